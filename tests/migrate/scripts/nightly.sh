#!/bin/sh
# Nightly copies with blit v1. A comment is never changed:
# blit backup:data/old /restore
set -e
SRC=/srv/data

# Plain copies and mirrors.
blit /srv/data backup:data/nightly
blit /srv/data backup:data/nightly --mir
blit --mir backup:data/nightly /restore
/usr/local/bin/blit /srv/www backup:www

# After other commands, prefixes and operators.
cd /srv && blit data backup:data/cd; echo done
sudo -u backup blit "backup:data/with space" /restore || exit 1
time blit backup:data/$DAY /restore/$DAY
LANG=C TZ=UTC blit /a 'rsync://backup/data/b'   # a trailing comment stays
env -i PATH=/usr/bin blit /srv/env backup::data/env | tee -a /var/log/nightly.log
nice -n 5 nohup blit /srv/big backup:data/big &
( blit /srv/sub backup:data/sub )
if blit /a '[::1]:data/v6'; then :; fi
blit /srv/src \
    backup:data/continued \
    --mir

# Already v2, or not blit: left alone.
blit copy /a blit://backup/data/a
blit mirror /a blit://backup:7000/data/a
scp file user@host:path
echo backup:data/x
curl -o /tmp/x http://backup:8080/data/x
at 12:30 <<END
blit backup:data/at /restore
END
command -v blit >/dev/null

# Not rewritten, with the reason on stderr.
blit --exclude '*.tmp' /a backup:data/b
blit /only-one-operand
blit "$HOST:data/x" /dst
blit backup:data/a backup:data/b
blit C:/data /tmp
blit $SRC /dst

# rsync is reported with its blit equivalent.
rsync -avz --delete --exclude=*.tmp /srv/ backup::data/srv
rsync -a /srv/photos rsync://backup/photos/
rsync -a /srv/photos user@backup:/photos
