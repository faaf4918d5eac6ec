# imagegate: docker build -t imagegate . && docker run imagegate --upstream URL …
# Flags go after the image name; every IMAGEGATE_* variable works too.

# Compile the TypeScript with the dev dependencies.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Only what runs: production dependencies (pino-pretty, optional, included).
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM node:24-slim
WORKDIR /app
# Inside a container the published port is the way in, so listen on every interface.
# The signing key is kept in the state folder: mount a volume there, or image links in
# the chat history stop working when the container is replaced.
# NODE_OPTIONS: V8's young generation kept at 16 MB semi-spaces, as `npm start` runs it.
# Left to grow (to 128 MB after a burst of hundreds of streams) it stays large, and the
# streaming path then spends a third more CPU per event (`npm run bench`, README).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=16 \
    IMAGEGATE_HOST=0.0.0.0 \
    IMAGEGATE_STATE_DIR=/var/lib/imagegate
RUN mkdir -p /var/lib/imagegate && chown node:node /var/lib/imagegate
# Owned by root: the process cannot change its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
VOLUME /var/lib/imagegate
EXPOSE 8090
# Asks /healthz on the port the server really listens on, whichever of --port,
# IMAGEGATE_PORT or a config file set it (read from /proc; slim images have no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/healthcheck.js"]
ENTRYPOINT ["node", "dist/cli.js"]
