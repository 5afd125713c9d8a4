/// The status page's templates, its stylesheet and its one script. Mustache escapes every value it
/// fills in (`{{…}}`; nothing here uses the unescaped `{{{…}}}`): a repository name or an error
/// message from a hostile forge renders as text. No inline script or style: the Content-Security-Policy
/// allows scripts and styles from the page's own origin only.
enum StatusPageTemplates {
    static let layout = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}} — gitmirror</title>
    <link rel="stylesheet" href="/static/page.css">
    <script src="/static/page.js" defer></script>
    </head>
    <body>
    <header>
    <p class="brand"><a href="/">gitmirror</a></p>
    <p id="freshness" class="freshness{{#stale}} stale{{/stale}}" data-version="{{version}}" role="status">{{freshness}}</p>
    </header>
    <main id="main">
    {{$content}}{{/content}}
    </main>
    </body>
    </html>
    """

    static let overview = """
    {{<layout}}{{$content}}
    <h1>Mirrors</h1>
    <nav aria-label="Totals by state"><ul class="totals">
    {{#totals}}<li><a class="total state-{{state}}{{#current}} current{{/current}}" href="{{href}}"{{#current}} aria-current="page"{{/current}}><span class="count">{{count}}</span> {{label}}</a></li>
    {{/totals}}</ul></nav>
    <form class="filter" method="get" action="/" role="search">
    <label>Name contains <input type="search" name="q" value="{{query}}"></label>
    <label>State <select name="state">{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/states}}</select></label>
    <button type="submit">Filter</button>{{#filtered}} <a href="/">Show all</a>{{/filtered}}
    </form>
    <p class="matched">{{matched}} of {{total}} repositories{{#paged}}, page {{page}} of {{pages}}{{/paged}}</p>
    {{#hasRows}}<table class="overview">
    <thead><tr><th scope="col">Repository</th><th scope="col">Remotes</th></tr></thead>
    <tbody>
    {{#rows}}<tr class="repository state-{{state}}" data-repository="{{name}}">
    <th scope="row"><a href="{{href}}">{{name}}</a><br><span class="badge state-{{state}}">{{label}}</span></th>
    <td><ul class="remotes">{{#remotes}}<li class="remote state-{{state}}"><span class="badge state-{{state}}">{{label}}</span> <strong>{{name}}</strong> <span class="role">{{role}}</span>
    {{#outOfStepFor}}<span class="lag">out of step for {{outOfStepFor}}</span>{{/outOfStepFor}}
    {{#lastSuccess}}<span class="when">last success <time datetime="{{iso}}">{{text}}</time></span>{{/lastSuccess}}{{^lastSuccess}}<span class="when">no success yet</span>{{/lastSuccess}}
    {{#progress}}<span class="progress">{{progress}}</span>{{/progress}}
    {{#errorClass}}<span class="error"><span class="error-class">{{errorClass}}</span>: {{errorLine}}</span>{{/errorClass}}</li>
    {{/remotes}}</ul></td></tr>
    {{/rows}}</tbody></table>{{/hasRows}}
    {{^hasRows}}<p class="empty">No repository matches.</p>{{/hasRows}}
    {{#paged}}<nav class="pages" aria-label="Pages">{{#previous}}<a rel="prev" href="{{previous}}">← previous</a>{{/previous}} {{#next}}<a rel="next" href="{{next}}">next →</a>{{/next}}</nav>{{/paged}}
    {{/content}}{{/layout}}
    """

    static let repository = """
    {{<layout}}{{$content}}
    <p><a href="/">← all mirrors</a></p>
    <h1>{{name}} <span class="badge state-{{state}}">{{label}}</span></h1>
    {{#queued}}<p class="notice" role="status">A sync of {{name}} was asked for; this page shows it when it ends.</p>{{/queued}}
    {{#canSync}}<form method="post" action="{{syncAction}}" class="sync"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sync now</button></form>{{/canSync}}
    <h2>Remotes</h2>
    <table class="remotes-detail">
    <thead><tr><th scope="col">Remote</th><th scope="col">URL</th><th scope="col">State</th><th scope="col">Last success</th><th scope="col">Last attempt</th><th scope="col">Error</th></tr></thead>
    <tbody>
    {{#remotes}}<tr class="remote state-{{state}}">
    <th scope="row">{{name}} <span class="role">{{role}}</span></th>
    <td><code>{{url}}</code></td>
    <td><span class="badge state-{{state}}">{{label}}</span>{{#outOfStepFor}}<br><span class="lag">for {{outOfStepFor}}</span>{{/outOfStepFor}}{{#progress}}<br><span class="progress">{{progress}}</span>{{/progress}}</td>
    <td>{{#lastSuccess}}<time datetime="{{iso}}">{{text}}</time>{{/lastSuccess}}{{^lastSuccess}}never{{/lastSuccess}}</td>
    <td>{{#lastAttempt}}<time datetime="{{iso}}">{{text}}</time>{{/lastAttempt}}{{^lastAttempt}}never{{/lastAttempt}}</td>
    <td>{{#errorClass}}<p class="error"><span class="error-class">{{errorClass}}</span></p><pre class="message">{{error}}</pre>{{#advice}}<p class="advice">What to do: {{advice}}</p>{{/advice}}{{/errorClass}}</td>
    </tr>
    {{/remotes}}</tbody></table>
    {{#hasDiverged}}<h2>Diverged refs</h2>
    <p>These refs on a secondary have commits the primary lacks. They are kept, not overwritten.</p>
    <ul class="diverged">{{#diverged}}<li><strong>{{remote}}</strong> <code>{{ref}}</code>: the secondary is at <code>{{old}}</code>, the primary at <code>{{new}}</code>.
    To keep the secondary's commits, merge them into the primary. To drop them, set <code>force: true</code> on {{remote}}; the old tip is backed up first. To leave this ref as it is: <code>gitmirror accept {{repository}} --remote {{remote}} --ref {{ref}}</code></li>
    {{/diverged}}</ul>{{/hasDiverged}}
    <h2>Recent runs</h2>
    {{#hasRuns}}<ol class="runs">{{#runs}}<li class="run result-{{result}}"><time datetime="{{iso}}">{{started}}</time> <span class="trigger">{{trigger}}</span> <span class="result">{{result}}</span> <span class="duration">{{duration}}</span><span class="bar" data-width="{{width}}"></span>{{#summary}} <span class="summary">{{summary}}</span>{{/summary}}</li>
    {{/runs}}</ol>{{/hasRuns}}{{^hasRuns}}<p>No run yet.</p>{{/hasRuns}}
    <h2>Ref journal</h2>
    {{#hasJournal}}<table class="journal">
    <thead><tr><th scope="col">When</th><th scope="col">Remote</th><th scope="col">Ref</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Action</th><th scope="col">Outcome</th></tr></thead>
    <tbody>{{#journal}}<tr><td><time datetime="{{iso}}">{{when}}</time></td><td>{{remote}}</td><td><code>{{ref}}</code></td><td><code>{{old}}</code></td><td><code>{{new}}</code></td><td>{{action}}</td><td>{{outcome}}{{#message}}: {{message}}{{/message}}</td></tr>
    {{/journal}}</tbody></table>
    <nav class="pages" aria-label="Journal pages">{{#newer}}<a href="{{newer}}">← newer</a>{{/newer}} {{#older}}<a href="{{older}}">older →</a>{{/older}}</nav>{{/hasJournal}}
    {{^hasJournal}}<p>No ref has moved yet.</p>{{/hasJournal}}
    <h2>Backups</h2>
    {{#hasBackups}}<p>Old tips kept in the cache before a forced overwrite. To put one back on its secondary:</p>
    <ul class="backups">{{#backups}}<li><code>{{backup}}</code> ({{remote}} <code>{{ref}}</code> at <code>{{old}}</code>, <time datetime="{{iso}}">{{when}}</time>)<br>
    <code class="command">git --git-dir={{cache}} push {{url}} +{{backup}}:{{ref}}</code></li>
    {{/backups}}</ul>{{/hasBackups}}{{^hasBackups}}<p>No backup has been made.</p>{{/hasBackups}}
    {{/content}}{{/layout}}
    """

    static let notFound = """
    {{<layout}}{{$content}}
    <h1>Not found</h1>
    <p>{{message}}</p>
    <p><a href="/">← all mirrors</a></p>
    {{/content}}{{/layout}}
    """

    static let stylesheet = """
    :root { color-scheme: light; font-family: system-ui, sans-serif; line-height: 1.4; }
    body { margin: 0 auto; max-width: 78rem; padding: 0 1rem 2rem; color: #1b1f24; }
    header { display: flex; justify-content: space-between; align-items: baseline; border-bottom: 1px solid #ccd; }
    .brand a { font-weight: bold; font-size: 1.2rem; text-decoration: none; color: inherit; }
    .freshness { color: #555; font-size: .9rem; }
    .freshness.stale { color: #8a1c1c; font-weight: bold; }
    h1 { font-size: 1.5rem; }
    .totals { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem; }
    .total { display: inline-block; padding: .3rem .7rem; border-radius: .4rem; text-decoration: none; color: #1b1f24; border: 2px solid transparent; }
    .total.current { border-color: #1b1f24; }
    .count { font-weight: bold; font-size: 1.1rem; }
    .filter { margin: .5rem 0; display: flex; gap: 1rem; flex-wrap: wrap; align-items: center; }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; vertical-align: top; padding: .4rem .5rem; border-bottom: 1px solid #e3e3ea; }
    .remotes { list-style: none; margin: 0; padding: 0; }
    .remote { margin: .15rem 0; }
    .badge { display: inline-block; padding: 0 .4rem; border-radius: .3rem; font-size: .85rem; white-space: nowrap; }
    .state-in_step { background: #dcf5e3; }
    .state-behind { background: #fff1c2; }
    .state-syncing { background: #dbe9ff; }
    .state-never_synced { background: #eceef2; }
    .state-diverged { background: #ffe0c2; }
    .state-failing { background: #ffd6d6; }
    tr.repository, li.remote, tr.remote { background: none; }
    .role, .when, .lag, .progress { color: #555; font-size: .85rem; margin-left: .4rem; }
    .lag { color: #8a1c1c; }
    .error { display: block; color: #8a1c1c; font-size: .9rem; overflow-wrap: anywhere; }
    .error-class { font-weight: bold; }
    pre.message { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; margin: .2rem 0; }
    .advice { font-size: .85rem; }
    code { overflow-wrap: anywhere; }
    .runs { list-style: none; padding: 0; }
    .run { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; font-size: .9rem; }
    .run .bar { display: inline-block; height: .6rem; background: #7a8aa8; border-radius: .2rem; width: 0; }
    .run.result-failed .bar, .run.result-partial .bar { background: #c44; }
    .notice { background: #dbe9ff; padding: .4rem .6rem; }
    .sync button, .filter button { padding: .3rem .8rem; }
    @media (prefers-reduced-motion: no-preference) { .run .bar { transition: width .2s; } }
    """

    /// Keeps the overview current without reloading it: when `/api/v1/version` changes (a run ended, a
    /// sync moved on), the page is fetched again and its main part replaced; when the daemon stops
    /// answering, the page says since when its data is stale. Without JavaScript the page works as is.
    static let script = """
    "use strict";
    (function () {
      var bars = function () {
        document.querySelectorAll(".run .bar[data-width]").forEach(function (bar) {
          bar.style.width = Math.max(2, Math.min(100, Number(bar.getAttribute("data-width")) || 0)) + "%";
        });
      };
      bars();
      var freshness = document.getElementById("freshness");
      if (!freshness || !window.fetch) { return; }
      var version = freshness.getAttribute("data-version");
      var failedSince = null;
      var poll = function () {
        fetch("/api/v1/version", { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { if (!response.ok) { throw new Error(String(response.status)); } return response.json(); })
          .then(function (answer) {
            failedSince = null;
            if (answer.version === version) { return null; }
            return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
              .then(function (response) { return response.text(); })
              .then(function (html) {
                var page = new DOMParser().parseFromString(html, "text/html");
                var main = page.getElementById("main"), fresh = page.getElementById("freshness");
                if (!main || !fresh) { return; }
                document.getElementById("main").replaceWith(main);
                fresh.setAttribute("data-refreshed", new Date().toISOString());
                freshness.replaceWith(fresh);
                freshness = fresh;
                version = fresh.getAttribute("data-version");
                document.title = page.title;
                bars();
              });
          })
          .catch(function () {
            if (failedSince === null) { failedSince = new Date(); }
            freshness.classList.add("stale");
            freshness.textContent = "The daemon has not answered since " + failedSince.toLocaleTimeString() + ": what this page shows may be stale.";
          });
      };
      setInterval(poll, 5000);
    })();
    """
}
