#!/bin/sh
# Stand-in for Prisma's native schema engine on machines that cannot download it
# (offline). `prisma generate` only checks that the file exists; Switchboard applies
# its migrations itself (npm run db:migrate), so nothing else needs the engine.
echo "prisma schema engine is not installed on this machine; use 'npm run db:migrate' to apply migrations" >&2
exit 1
