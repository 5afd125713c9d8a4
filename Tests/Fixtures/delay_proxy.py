"""A TCP proxy that delays every chunk by --delay seconds in each direction, keeping their order:
a remote as far away as a real one, in front of a loopback server. Logs each connection's
opening and closing (wall-clock time) to --log: "open N TIME" / "close N TIME"."""
import argparse
import asyncio
import time

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (any of 127.0.0.0/8: a host of its own)")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--target-port", type=int, required=True)
parser.add_argument("--delay", type=float, required=True)
parser.add_argument("--log", required=True)
args = parser.parse_args()
counter = 0


def log(line):
    with open(args.log, "a") as handle:
        handle.write(line + "\n")


async def pipe(reader, writer):
    """Forwards chunks, each released `delay` after it arrived (a queue keeps them in order)."""
    queue = asyncio.Queue()

    async def release():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(release())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + args.delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def handle(client_reader, client_writer):
    global counter
    counter += 1
    number = counter
    log("open %d %.6f" % (number, time.time()))
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", args.target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer), return_exceptions=True)
    for writer in (client_writer, server_writer):
        writer.close()
    log("close %d %.6f" % (number, time.time()))


async def main():
    server = await asyncio.start_server(handle, args.host, args.port)
    print("listening on %d" % args.port, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
