import { readFileSync } from 'node:fs'
import Fastify, { LogController } from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { DestinationStream } from 'pino'
import { defaultPublicUrl, redactUrl } from './config/urls.js'
import type { Options } from './config/options.js'
import { ImagegateError } from './errors.js'
import { createFileResolver } from './files/resolver.js'
import type { FileResolver, Rejection } from './files/resolver.js'
import { createSigner, loadOrCreateKey } from './files/signing.js'
import type { Signer } from './files/signing.js'
import { loggerOptions, pathOnly } from './log.js'
import { createRewriter } from './rewrite/rewriter.js'
import { createDelivery } from './delivery.js'
import { createDataStore } from './files/data-store.js'
import { registerImages } from './routes/images.js'
import { registerProxy } from './routes/proxy.js'
import type { ActiveStream } from './routes/proxy.js'
import { createUpstream } from './upstream/client.js'
import type { UpstreamOptions } from './upstream/client.js'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface ServerSettings {
  /** Log sink; stdout when absent. */
  logStream?: DestinationStream
  /** Upstream timeouts, for tests of stalled upstreams. */
  upstreamTimeouts?: Pick<UpstreamOptions, 'headersTimeout' | 'bodyTimeout' | 'connectTimeout'>
  /** Overrides the home folder `~/` stands for in references. */
  homedir?: string
}

/** What happened to one reference; the server reports each one to `onReference`. */
export type ReferenceOutcome = 'rewritten' | 'in-code' | Rejection

export interface Server {
  app: FastifyInstance
  files: FileResolver
  /** Signs image names; undefined with `noSigning`. */
  signer: Signer | undefined
  /** The public URL links point at; set at `listen` when not configured. */
  readonly publicUrl: string
  /** Event streams running now. */
  readonly streams: ReadonlySet<ActiveStream>
  listen: () => Promise<string>
  /**
   * Stops accepting connections, gives running streams `shutdownGrace` seconds to
   * finish, then ends the rest with an error event, and closes.
   */
  close: () => Promise<void>
}

const shuttingDown = (): ImagegateError =>
  new ImagegateError('server_shutting_down', 503, 'server_error', 'imagegate is shutting down; the answer was cut')

/** The signer for image links: the configured key, else the one kept in the state folder. */
function signerFor (options: Options): Signer | undefined {
  if (options.noSigning) return undefined
  return createSigner(options.signingKey ?? loadOrCreateKey(options.stateDir).key)
}

/** Builds the whole application without listening (routes, upstream pool, resolver). */
export async function buildServer (options: Options, settings: ServerSettings = {}): Promise<Server> {
  const app = Fastify({
    logger: loggerOptions({ level: options.logLevel, stream: settings.logStream }),
    logController: new LogController({ disableRequestLogging: true }),
    // `//v1//chat/completions` is the same route; Open WebUI users paste base URLs with a
    // trailing slash.
    routerOptions: { ignoreDuplicateSlashes: true },
    // Bodies are streamed, never parsed; the proxy enforces its own size limit.
    bodyLimit: Number.MAX_SAFE_INTEGER,
    // Agent runs are long; Node's default request timeout would cut them.
    requestTimeout: 0,
    return503OnClosing: true,
    // A URL the router cannot decode (`/v1/%zz`) reaches no route and no hook; it still
    // gets its request line and an OpenAI-shaped error, without the URL echoed back.
    frameworkErrors: (error, request, reply) => {
      // Fastify's option type is generic over route schemas this server does not use.
      const plain = reply as unknown as FastifyReply
      logRequestOnClose(request as unknown as FastifyRequest, plain)
      plain.code(error.statusCode ?? 400).send({ error: { message: 'the request URL is malformed', type: 'invalid_request_error', code: error.code } })
    }
  })

  let publicUrl = options.publicUrl ?? ''
  const files = createFileResolver({
    // Images decoded from inline data: URIs are served like cached ones, found last.
    cacheDirs: [...options.cacheDirs, options.storeDir],
    allowSvg: options.allowSvg,
    ...(settings.homedir !== undefined ? { homedir: settings.homedir } : {})
  })
  const signer = signerFor(options)
  const streams = new Set<ActiveStream>()
  const upstream = createUpstream({ base: options.upstream, ...settings.upstreamTimeouts })
  app.addHook('onClose', async () => { await upstream.close() })

  const store = createDataStore({ dir: options.storeDir, maxBytes: options.dataImageMaxBytes })
  const delivery = createDelivery({
    files,
    signer,
    publicUrl: () => publicUrl,
    mode: options.mode,
    inlineMaxBytes: options.inlineMaxBytes,
    store
  })

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ImagegateError) {
      // A client mistake is already visible as the status of the request line.
      request.log[error.statusCode >= 500 ? 'warn' : 'debug']({ err: error }, error.message)
      return reply.code(error.statusCode).send(error.toBody())
    }
    const status = typeof (error as { statusCode?: unknown }).statusCode === 'number' ? (error as { statusCode: number }).statusCode : 500
    if (status >= 500) request.log.error({ err: error }, 'request failed')
    const message = status >= 500 ? 'internal error' : (error as Error).message
    return reply.code(status).send({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', code: (error as { code?: string }).code ?? 'error' } })
  })

  app.addHook('onRequest', async (request, reply) => { logRequestOnClose(request, reply) })

  app.get('/healthz', async () => ({ status: 'ok', version: VERSION }))
  await app.register(registerImages, { files, signer })
  await app.register(registerProxy, {
    upstream,
    upstreamApiKey: options.upstreamApiKey,
    keepaliveMs: options.keepalive * 1000,
    streams,
    newRewriter: (log) => createRewriter({
      resolve: delivery.resolve,
      storeDataImage: delivery.storeDataImage,
      // Four base64 characters per three bytes.
      maxDataChars: Math.ceil(options.dataImageMaxBytes / 3) * 4,
      onRewrite: ({ resolved }) => { log.debug({ name: resolved.name }, 'reference rewritten') }
    })
  })

  async function close (): Promise<void> {
    const closing = app.close()
    if (streams.size > 0) {
      let timer: NodeJS.Timeout | undefined
      const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, options.shutdownGrace * 1000) })
      await Promise.race([Promise.allSettled([...streams].map((stream) => stream.done)), grace])
      clearTimeout(timer)
      for (const stream of streams) stream.stop(shuttingDown())
    }
    await closing
  }

  return {
    app,
    files,
    signer,
    streams,
    get publicUrl () { return publicUrl },
    async listen () {
      await app.listen({ port: options.port, host: options.host })
      const address = app.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : options.port
      if (options.publicUrl === undefined) publicUrl = defaultPublicUrl(options.host, port)
      return defaultPublicUrl(options.host, port)
    },
    close
  }
}

/** Starts imagegate as the CLI does: builds, listens, logs where it can be reached. */
export async function startServer (options: Options, extra: { warnings?: string[] } & ServerSettings = {}): Promise<{ url: string, close: () => Promise<void> }> {
  const server = await buildServer(options, extra)
  for (const warning of extra.warnings ?? []) server.app.log.warn(warning)
  const url = await server.listen()
  server.app.log.info({
    url,
    publicUrl: server.publicUrl,
    upstream: redactUrl(options.upstream),
    cacheDirs: options.cacheDirs,
    storeDir: options.storeDir
  }, `imagegate listening on ${url}`)
  return { url, close: server.close }
}

/**
 * One line per request, written by us so it never carries headers or query strings.
 * On the response's `close` rather than in onResponse, which Fastify never runs for a
 * client that went away mid-stream, and those are the requests an operator looks for.
 */
function logRequestOnClose (request: FastifyRequest, reply: FastifyReply): void {
  reply.raw.once('close', () => {
    const finished = reply.raw.writableFinished
    request.log.info({
      method: request.method,
      url: pathOnly(request.url),
      // Before headers went out there is no status to report.
      ...(finished || reply.raw.headersSent ? { statusCode: reply.statusCode } : {}),
      ms: Math.round(reply.elapsedTime),
      ...(finished ? {} : { aborted: true })
    }, 'request')
  })
}
