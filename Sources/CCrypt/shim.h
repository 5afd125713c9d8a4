// libxcrypt (Debian's libcrypt-dev; libcrypt1 is on every Debian system): crypt_rn checks the
// status page's users file, whose hashes `htpasswd -B` (bcrypt), `mkpasswd` (yescrypt) and others write.
#include <crypt.h>
