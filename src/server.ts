import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { DestinationStream } from 'pino'
import { defaultPublicUrl, isImageLink, publicPath, redactUrl, unmount } from './config/urls.js'
import { formatAddress, isLoopbackHost, machineAddresses, reachesListener, selfUpstreamMessage } from './config/self-address.js'
import type { Options } from './config/options.js'
import { ConfigError, ERRORS, NOT_FOUND_BODY, malformedRequest, serverShuttingDown, toHttpError } from './errors.js'
import { createFileResolver } from './files/resolver.js'
import type { FileResolver } from './files/resolver.js'
import { createSigner, loadOrCreateKey } from './files/signing.js'
import type { Signer } from './files/signing.js'
import { describeCause, logDestination, loggerOptions, pathOnly } from './log.js'
import { METRICS_PATH, createMetrics, registerMetrics } from './metrics.js'
import type { Metrics, ReferenceOutcome } from './metrics.js'
import { createRewriteSession } from './rewrite/session.js'
import { createDelivery } from './delivery.js'
import { createDataStore } from './files/data-store.js'
import { base64Length } from './files/file-types.js'
import { createCompactor } from './files/compactor.js'
import type { CompactorOptions } from './files/compactor.js'
import { findHermesCacheDirs } from './config/cache-dirs.js'
import { HEALTH_PATHS, createReadiness, probeUpstream, registerHealth } from './routes/health.js'
import { registerImages } from './routes/images.js'
import { registerProxy } from './routes/proxy.js'
import type { ActiveStream, AnswerSummary } from './routes/proxy.js'
import type { PumpEnd } from './routes/event-pump.js'
import { CUT_FLUSH_MS, createDrain } from './shutdown.js'
import { createUpstream } from './upstream/client.js'
import type { UpstreamOptions } from './upstream/client.js'
import { viaName } from './upstream/headers.js'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface ServerSettings {
  /** Log sink; stdout when absent. */
  logStream?: DestinationStream
  /** Upstream timeouts, for tests of stalled upstreams. */
  upstreamTimeouts?: Pick<UpstreamOptions, 'headersTimeout' | 'bodyTimeout' | 'connectTimeout'>
  /** Overrides the home folder `~/` stands for in references. */
  homedir?: string
  /** Readiness probe timeout and cache, for tests. */
  readiness?: { timeoutMs?: number, ttlMs?: number, now?: () => number }
  /** Encoder concurrency, queue and wait, for tests of a busy compactor. */
  compactor?: Pick<CompactorOptions, 'concurrency' | 'queueLimit' | 'waitMs'>
  /** Request body limit, for tests of refused bodies that need not send 50 MB each. */
  maxBodySize?: number
}

export interface Server {
  app: FastifyInstance
  files: FileResolver
  /** Signs image names; undefined with `noSigning`. */
  signer: Signer | undefined
  /** The public URL links point at; set at `listen` when not configured. */
  readonly publicUrl: string
  /** The address the server is bound to (`0.0.0.0:8090`); set at `listen`. */
  readonly address: string
  /** Event streams running now. */
  readonly streams: ReadonlySet<ActiveStream>
  listen: () => Promise<string>
  /**
   * Stops accepting connections and answers requests that still arrive with a 503;
   * closes each connection as its response ends and idle ones at once; gives running
   * requests `shutdownGrace` seconds to finish, then ends the streams left with an error
   * event, the requests waiting for the upstream with a 503, and closes every
   * connection. Calling it again returns the same promise.
   */
  close: () => Promise<void>
}

/** Stream ends where the client got an error event instead of the whole answer. */
const CUT_ENDS: ReadonlySet<PumpEnd> = new Set(['stopped', 'upstream-error', 'too-large'])

/**
 * Request lines of these routes are written at `debug`: orchestrators and Prometheus ask
 * every few seconds, and at `info` their lines would bury the requests that matter.
 */
const PROBE_ROUTES: ReadonlySet<string> = new Set([...HEALTH_PATHS, METRICS_PATH])

/**
 * The signer for image links: the configured key, else the one kept in the state folder.
 * A key generated now is said at start: it is why links in old chats stop working when
 * the state folder was lost (a container replaced without its volume).
 */
function signerFor (options: Options, log: FastifyBaseLogger): Signer | undefined {
  if (options.noSigning) return undefined
  if (options.signingKey !== undefined) return createSigner(options.signingKey)
  const { key, created } = keyIn(options.stateDir)
  if (created) {
    log.info({ stateDir: options.stateDir }, `generated a new signing key in ${options.stateDir}: image links made with an earlier key no longer work`)
  }
  return createSigner(key)
}

/**
 * Builds what keeps its files in `dir`. A folder this user may not create or write (the
 * default under a home folder of another user, a read-only mount, a volume owned by
 * another uid) is the most common failure at first start; the message names the option
 * to change rather than the system call that failed. An error that is not the system's
 * (a corrupt key file) already says what to do.
 */
function inFolder<T> (option: string, dir: string, what: string, fix: string, build: () => T): T {
  try {
    return build()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === undefined) throw err
    throw new ConfigError(`${option}: cannot keep ${what} in "${dir}" (${code}); ${fix}`, { cause: err })
  }
}

/** The key kept in the state folder. */
function keyIn (stateDir: string): ReturnType<typeof loadOrCreateKey> {
  return inFolder('--state-dir', stateDir, 'the signing key', 'give a folder this user may write with --state-dir, or a key of your own with --signing-key', () => loadOrCreateKey(stateDir))
}

/** Builds the whole application without listening (routes, upstream pool, resolver). */
export async function buildServer (options: Options, settings: ServerSettings = {}): Promise<Server> {
  const streams = new Set<ActiveStream>()
  const answers: Answers = new WeakMap()
  const metrics = createMetrics({ activeStreams: () => streams.size, storeBytes: () => store.bytes })
  const drain = createDrain()
  // Aborted at the end of the grace: requests still waiting for the upstream give up.
  const graceOver = new AbortController()
  // The path of the public URL (`/imagegate`): imagegate answers under it as under `/`, so
  // a reverse proxy may forward `/imagegate/images/…` without a rule to strip it.
  const mount = publicPath(options.publicUrl)
  const app = Fastify({
    // Fastify keeps the URL as received in `originalUrl`. node:http always sets `url`.
    rewriteUrl: (request: IncomingMessage) => unmount(request.url as string, mount),
    logger: loggerOptions({ level: options.logLevel, stream: await logDestination(settings.logStream) }),
    logController: new LogController({ disableRequestLogging: true }),
    // `//v1//chat/completions` is the same route; Open WebUI users paste base URLs with a
    // trailing slash.
    routerOptions: { ignoreDuplicateSlashes: true },
    // Bodies are streamed, never parsed; the proxy enforces its own size limit.
    bodyLimit: Number.MAX_SAFE_INTEGER,
    // Agent runs are long; Node's default request timeout would cut them.
    requestTimeout: 0,
    // Fastify's own 503 has a body of its own shape; the onRequest hook below answers
    // with imagegate's OpenAI-shaped one.
    return503OnClosing: false,
    // A URL the router cannot decode (`/v1/%zz`) reaches no route and no hook; it still
    // gets its request line and an OpenAI-shaped error, without the URL echoed back.
    frameworkErrors: (error, request, reply) => {
      // Fastify's option type is generic over route schemas this server does not use.
      const plain = reply as unknown as FastifyReply
      observeOnClose(request as unknown as FastifyRequest, plain, metrics, answers)
      return sendError(error, request as unknown as FastifyRequest, plain)
    },
    // A request Node's HTTP parser refuses (a bad request line, a head too large or too
    // slow) never becomes a request: the answer is written to the socket, in the same
    // shape as every other error instead of Fastify's own.
    clientErrorHandler: (err, socket) => {
      const error = toHttpError(err, malformedRequest)
      const body = JSON.stringify(error.toBody())
      // A reset or closing connection takes nothing more (Fastify's default does the same).
      if (socket.writable && err.code !== 'ECONNRESET') {
        socket.write(`HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] as string}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
      }
      socket.destroy(err)
    }
  })

  let publicUrl = options.publicUrl ?? ''
  let bound = ''
  const { hermesHome } = options
  const files = createFileResolver({
    cacheDirs: options.cacheDirs,
    // Images decoded from inline data: URIs are served like cached ones, found last.
    storeDir: options.storeDir,
    allowSvg: options.allowSvg,
    ...(settings.homedir !== undefined ? { homedir: settings.homedir } : {}),
    // Found by default: hermes may create a profile's cache after imagegate started.
    ...(hermesHome !== undefined
      ? { discover: () => findHermesCacheDirs(hermesHome), onFolderFound: (dir: string) => { app.log.info({ dir }, 'cache folder found') } }
      : {})
  })
  const signer = signerFor(options, app.log)
  const upstream = createUpstream({ base: options.upstream, ...settings.upstreamTimeouts })
  // Forwarded requests name this instance in `Via`, so that one coming back is caught
  // whatever address the loop took. Random per server: it says nothing about the host.
  const via = viaName(randomBytes(6).toString('hex'))
  app.addHook('onClose', async () => { await upstream.close() })

  const onReference = (outcome: ReferenceOutcome): void => { metrics.reference(outcome) }
  const store = inFolder('--store-dir', options.storeDir, 'the images sent as data: URLs', 'give a folder this user may write with --store-dir (by default <state-dir>/store)', () => createDataStore({
    dir: options.storeDir,
    maxBytes: options.dataImageMaxBytes,
    maxTotalBytes: options.storeMaxBytes,
    onEvict: () => { metrics.storeEviction() }
  }))
  const delivery = createDelivery({
    files,
    signer,
    publicUrl: () => publicUrl,
    mode: options.mode,
    inlineMaxBytes: options.inlineMaxBytes,
    store
  })

  app.setErrorHandler((error, request, reply) => sendError(error, request, reply))
  // Methods the router has no route for (PROPFIND, LOCK…): Fastify's own 404 body
  // would echo the URL, query string included.
  app.setNotFoundHandler((_request, reply) => reply.code(ERRORS.not_found.status).header('cache-control', 'no-store').send(NOT_FOUND_BODY))

  app.addHook('onRequest', async (request, reply) => {
    observeOnClose(request, reply, metrics, answers)
    drain.track(reply.raw)
    // A request on a connection that was busy when shutdown began (a pipelined one, or
    // one whose head was still arriving). Served, it would start an agent run the grace
    // may cut; refused, it never reaches the upstream and the client can send it again,
    // as the OpenAI SDK does on a 503.
    if (drain.draining) {
      const refused = serverShuttingDown('not-forwarded')
      return reply.code(refused.statusCode).header('connection', 'close').send(refused.toBody())
    }
  })

  const { timeoutMs, ...cache } = settings.readiness ?? {}
  const probe = (): ReturnType<typeof probeUpstream> =>
    probeUpstream({ upstream, apiKey: options.upstreamApiKey, via: `1.1 ${via}`, ...(timeoutMs !== undefined ? { timeoutMs } : {}) })
  await app.register(registerHealth, { version: VERSION, readiness: createReadiness({ probe, ...cache }) })
  await app.register(registerMetrics, { metrics })
  const compactDir = path.join(options.stateDir, 'compact')
  const compactor = options.compactImages === 'off'
    ? undefined
    : inFolder('--state-dir', compactDir, 'compact images', 'give a folder this user may write with --state-dir, or --compact-images off', () => createCompactor({
      dir: compactDir,
      maxTotalBytes: options.compactMaxBytes,
      quality: options.compactQuality,
      maxWidth: options.compactMaxWidth,
      ...settings.compactor,
      // The file name only, as for every reference logged.
      onFailure: ({ realPath, err }) => { app.log.warn({ err, name: path.basename(realPath) }, 'image could not be compacted; the original is sent') }
    }))
  if (compactor !== undefined) app.addHook('onClose', async () => { await compactor.close() })
  await app.register(registerImages, {
    files,
    signer,
    onDeliver: (file) => { store.touch(file.realPath) },
    compact: compactor === undefined ? undefined : { setting: options.compactImages, compactor }
  })
  await app.register(registerProxy, {
    upstream,
    upstreamApiKey: options.upstreamApiKey,
    keepsLocal: isImageLink,
    viaName: via,
    keepaliveMs: options.keepalive * 1000,
    dropNamedEvents: options.dropNamedEvents,
    streams,
    graceOver: graceOver.signal,
    ...(settings.maxBodySize !== undefined ? { maxBodySize: settings.maxBodySize } : {}),
    rewriteRequestBody: options.mode === 'data-uri' ? delivery.shortenOwnInline : undefined,
    onUpstreamHeaders: (request, seconds) => { metrics.upstreamFirstByte(routeOf(request), seconds) },
    onAnswer: ({ request, summary }) => { answers.set(request, summary) },
    newSession: (request) => createRewriteSession({
      resolveFor: delivery.resolveFor,
      storeDataImage: delivery.storeDataImage,
      maxDataChars: base64Length(options.dataImageMaxBytes),
      log: request.log,
      onReference
    })
  })

  let closed: Promise<void> | undefined
  const close = (): Promise<void> => (closed ??= shutDown())

  async function shutDown (): Promise<void> {
    drain.begin()
    // Stops listening and closes idle connections (Node's server.close() does both); it
    // resolves once the last connection is closed.
    const closing = app.close()
    if (drain.size > 0) {
      app.log.info({ requests: drain.size, streams: streams.size, graceSeconds: options.shutdownGrace }, 'shutting down: waiting for running requests')
    }
    if (await within(closing, options.shutdownGrace * 1000)) return
    if (streams.size > 0) app.log.warn({ streams: streams.size }, 'shutting down: cutting streams still running')
    for (const stream of streams) stream.stop(serverShuttingDown('answer-cut'))
    graceOver.abort()
    // Whatever is still open now (a client that does not read, a request head that never
    // ends) would hold the process past the grace.
    if (!await within(closing, CUT_FLUSH_MS)) app.server.closeAllConnections()
    await closing
  }

  return {
    app,
    files,
    signer,
    streams,
    get publicUrl () { return publicUrl },
    get address () { return bound },
    async listen () {
      // Fastify says "Server listening at …" once per interface; imagegate's own start
      // line (startServer) says it once, with the public URL. Nothing else logs in between.
      const level = app.log.level
      app.log.level = 'silent'
      try {
        await app.listen({ port: options.port, host: options.host })
      } finally {
        app.log.level = level
      }
      // A TCP listener (never a pipe): its address is host and port.
      const { port, address } = app.server.address() as AddressInfo
      bound = formatAddress({ host: address, port })
      // Port 0 is chosen only now, so the check of the resolved options could not see it.
      const listening = { host: options.host, port }
      if (reachesListener(options.upstream, listening, machineAddresses())) {
        await app.close()
        throw new ConfigError(`upstream: ${selfUpstreamMessage(options.upstream, listening)}`)
      }
      if (options.publicUrl === undefined) publicUrl = defaultPublicUrl(options.host, port)
      return defaultPublicUrl(options.host, port)
    },
    close
  }
}

/** Starts imagegate as the CLI does: builds, listens, logs where it can be reached. */
export async function startServer (options: Options, extra: { warnings?: string[] } & ServerSettings = {}): Promise<{ url: string, publicUrl: string, address: string, close: () => Promise<void> }> {
  const server = await buildServer(options, extra)
  for (const warning of extra.warnings ?? []) server.app.log.warn(warning)
  const url = await server.listen()
  server.app.log.info({
    url,
    address: server.address,
    publicUrl: server.publicUrl,
    upstream: redactUrl(options.upstream),
    cacheDirs: options.cacheDirs,
    storeDir: options.storeDir
  }, `imagegate listening on http://${server.address}; image links start with ${server.publicUrl}`)
  if (options.noSigning && !isLoopbackHost(options.host)) {
    server.app.log.warn({ address: server.address }, `--no-signing on ${server.address}: anyone who can reach this address can fetch every deliverable file by its name`)
  }
  return { url, publicUrl: server.publicUrl, address: server.address, close: server.close }
}

/**
 * Answers `error` with its row of the error table. A client mistake is already visible
 * as the status of the request line: its debug line has the code only, since the cause
 * of one Fastify found may quote the URL. Expected failures are one line with their
 * cause: a stack would only point into undici. An error nobody foresaw is logged whole,
 * and its client gets `internal_error`, never its message.
 */
function sendError (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const answer = toHttpError(error)
  if (answer.code === 'internal_error') {
    request.log.error({ err: answer.cause }, 'request failed')
  } else if (answer.statusCode >= 500) {
    const cause = answer.cause === undefined ? {} : { cause: describeCause(answer.cause) }
    request.log.warn({ code: answer.code, ...cause }, answer.message)
  } else {
    request.log.debug({ code: answer.code }, answer.message)
  }
  return reply.code(answer.statusCode).send(answer.toBody())
}

/** Whether `promise` settles within `ms`. */
async function within (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([promise.then(() => true as const), late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * One line per request, written by us so it never carries headers or query strings, and
 * the request's metrics. On the response's `close` rather than in onResponse, which
 * Fastify never runs for a client that went away mid-stream, and those are the requests
 * an operator looks for. An event stream's line says how it ended (`stream`), and is a
 * warning when the client got an error event instead of the whole answer: its status
 * went out as 200 before anything went wrong.
 */
function observeOnClose (request: FastifyRequest, reply: FastifyReply, metrics: Metrics, answers: Answers): void {
  reply.raw.once('close', () => {
    const finished = reply.raw.writableFinished
    // Before headers went out there is no status to report.
    const status = finished || reply.raw.headersSent ? reply.statusCode : undefined
    const route = routeOf(request)
    const line = {
      method: request.method,
      // As received: with the public URL's path, if the client sent it.
      url: pathOnly(request.originalUrl),
      ...(status !== undefined ? { statusCode: status } : {}),
      ms: Math.round(reply.elapsedTime),
      ...(finished ? {} : { aborted: true })
    }
    const write = (answer?: AnswerSummary): void => {
      const level = answer?.stream !== undefined && CUT_ENDS.has(answer.stream) ? 'warn' : route !== undefined && PROBE_ROUTES.has(route) ? 'debug' : 'info'
      request.log[level]({ ...line, ...answer }, 'request')
    }
    // A stream whose client left ends (`aborted`) just after this event.
    const answer = answers.get(request)
    if (answer === undefined) write()
    else answer.then(write)
    metrics.request({ method: request.method, route, status, finished, contentLength: reply.getHeader('content-length') })
  })
}

/** Each rewritten answer's summary, by request, until its request line is written. */
type Answers = WeakMap<FastifyRequest, Promise<AnswerSummary>>

/** The route pattern a request matched (`/images/*`), never its URL; undefined for none. */
function routeOf (request: FastifyRequest): string | undefined {
  return request.routeOptions.url
}
