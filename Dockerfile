# syntax=docker/dockerfile:1
# Switchboard: multi-stage image on Node 24 / Debian bookworm.
# Build: docker build -t switchboard .
# Run:   docker run -p 8080:8080 -p 40000-40100:40000-40100/udp \
#          -e API_KEYS=... -e JWT_PRIVATE_KEY_FILE=/run/secrets/jwt.pem switchboard

# ---- build: dependencies, mediasoup worker, Prisma client, TypeScript ---------------
FROM node:24-bookworm AS build
WORKDIR /app
# The same setup script as on a developer machine: with internet the mediasoup
# worker is mediasoup's prebuilt download; without it, the offline Debian build.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY server ./server
COPY client ./client
RUN SWITCHBOARD_NO_BROWSER=1 SWITCHBOARD_NO_PROMTOOL=1 SWITCHBOARD_NO_NGINX=1 bash scripts/setup.sh \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf server/generated node_modules/.cache

# ---- runtime ---------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
# ffmpeg for recording; the shared libraries an offline-built mediasoup worker
# links (a prebuilt worker is static and needs none of them); tini as PID 1.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini ca-certificates \
      libssl3 libuv1 libsrtp2-1 libusrsctp2 libabsl20220623 libflatbuffers2 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    RECORDINGS_DIR=/recordings
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
RUN mkdir -p /data /recordings && chown -R node:node /data /recordings
USER node
VOLUME ["/data", "/recordings"]
EXPOSE 8080 40000-40063/udp 40000-40063/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server/main.js"]
