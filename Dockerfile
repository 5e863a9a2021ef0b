# syntax=docker/dockerfile:1
# The pickup worker sidecar (pickup/main.ts), bundled by esbuild and run by Node 22 as a non-root user.
# In ECS it runs beside kubo (docker/kubo) and drives it through kubo's RPC API on 127.0.0.1:5001.

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Production dependencies only, without install scripts (the bundle has no native module), and esbuild at the
# version the lockfile pins, on its own (the dev dependencies include the whole of SST and CDK).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm install --prefix /opt/esbuild --no-save --no-audit --no-fund \
      "esbuild@$(node -p "require('./package-lock.json').packages['node_modules/esbuild'].version")"
COPY tsconfig.json ./
COPY core ./core
COPY adapters ./adapters
COPY pickup ./pickup
# The same options as test/stacks/bundle.test.ts. CommonJS dependencies require Node built-ins: the banner
# gives the ESM bundle a `require`.
RUN /opt/esbuild/node_modules/.bin/esbuild pickup/main.ts --bundle --platform=node --format=esm \
      --target=node22 --sourcemap --outfile=dist/main.mjs \
      "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    HEALTH_PORT=8081
WORKDIR /app
COPY --from=build /src/dist/ ./
USER node
# Healthy only while the worker loop is alive and IPFS answers (pickup/health.ts). ECS runs the same command
# from the task definition (it ignores image health checks).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||8081)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--enable-source-maps", "main.mjs"]
