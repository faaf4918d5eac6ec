import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { ERRORS, HttpError, NOT_FOUND_BODY, loopDetected, requestTooLarge, serverShuttingDown, upstreamStreamError } from '../errors.js'
import { createEventStream } from '../sse/event-stream.js'
import type { ReferenceTally, RewriteSession } from '../rewrite/session.js'
import { classifyUpstreamError } from '../upstream/client.js'
import type { Upstream } from '../upstream/client.js'
import { clientResponseHeaders, upstreamRequestHeaders, viaIncludes } from '../upstream/headers.js'
import { describeCause } from '../log.js'
import { pumpEvents } from './event-pump.js'
import type { PumpEnd } from './event-pump.js'
import { PROTOCOLS } from './protocols.js'
import type { Protocol } from './protocols.js'

/** Open WebUI sends user images as base64 inside the JSON body. */
export const DEFAULT_MAX_BODY_SIZE = 50 * 1024 * 1024
/** A non-streaming answer is read whole to rewrite it; past this it passes through as is. */
export const DEFAULT_MAX_JSON_SIZE = 64 * 1024 * 1024
/** How long the rest of a refused body is read and dropped before the connection closes. */
const LINGER_MS = 30_000

/** A running event stream, as the server sees it for shutdown and metrics. */
export interface ActiveStream {
  /** Ends the stream now with `error` as its last event. */
  stop: (error: HttpError) => void
  readonly done: Promise<PumpEnd>
}

/** What became of one rewritten answer, for its request line. */
export interface AnswerSummary extends ReferenceTally {
  /** How an event stream ended; absent for a JSON answer. */
  stream?: PumpEnd
}

export interface ProxyOptions {
  upstream: Upstream
  upstreamApiKey: string | undefined
  /**
   * This instance's name in `Via` headers. Forwarded requests carry it; one that
   * arrives with it already went round a loop and is refused with 508.
   */
  viaName: string
  /** The rewrite session of one request's answer. */
  newSession: (request: FastifyRequest) => RewriteSession
  /** Each rewritten answer, with a summary that settles once the answer is complete. */
  onAnswer?: (answer: { request: FastifyRequest, summary: Promise<AnswerSummary> }) => void
  /** Seconds from sending a request upstream to its response head (metrics). */
  onUpstreamHeaders?: (request: FastifyRequest, seconds: number) => void
  /** Milliseconds of upstream silence before a keep-alive comment; 0 = never. */
  keepaliveMs: number
  /** Rewrites a request body of the rewritten APIs before it goes upstream (data-uri mode). */
  rewriteRequestBody?: ((body: string) => string) | undefined
  /**
   * Client URLs that are never forwarded but answered like an unknown image (404): image
   * links whose signature must not reach the upstream.
   */
  keepsLocal: (url: string) => boolean
  /** Drop named events from chat completions streams (`--drop-named-events`). */
  dropNamedEvents?: boolean
  /** Every running event stream is added here until it ends. */
  streams?: Set<ActiveStream>
  /**
   * Aborted when the shutdown grace is over: a request still waiting for the upstream
   * stops it and answers 503. (Event streams are stopped through `streams`.)
   */
  graceOver?: AbortSignal
  maxBodySize?: number
  maxJsonSize?: number
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no'
}

const isEventStream = (type: string | string[] | undefined): boolean =>
  typeof type === 'string' && type.toLowerCase().startsWith('text/event-stream')
const isJson = (type: string | string[] | undefined): boolean =>
  typeof type === 'string' && /^application\/([\w.+-]+\+)?json/i.test(type)
// Only a body in plain bytes can be read and rewritten. We ask for identity, but an
// upstream (or a proxy before it) may compress anyway; such a body passes through.
const isPlain = (encoding: string | string[] | undefined): boolean =>
  encoding === undefined || (typeof encoding === 'string' && encoding.trim().toLowerCase() === 'identity')

/**
 * Everything between the client and the upstream: answers of the protocols in
 * `PROTOCOLS` (chat completions and the Responses API, streamed or not) are rewritten,
 * every other path is passed through with bodies streamed both ways.
 */
export async function registerProxy (app: FastifyInstance, options: ProxyOptions): Promise<void> {
  const maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE
  const maxJsonSize = options.maxJsonSize ?? DEFAULT_MAX_JSON_SIZE
  const { upstream } = options

  // Bodies are never parsed here: the raw request stream goes upstream as it arrives.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  for (const protocol of PROTOCOLS) {
    for (const url of protocol.paths) app.post(url, (request, reply) => forward(request, reply, protocol))
  }
  app.all('/*', (request, reply) => {
    if (options.keepsLocal(request.url)) {
      return reply.code(ERRORS.not_found.status).header('cache-control', 'no-store').send(NOT_FOUND_BODY)
    }
    return forward(request, reply, undefined)
  })

  async function forward (request: FastifyRequest, reply: FastifyReply, protocol: Protocol | undefined): Promise<FastifyReply> {
    // Before anything else: a looping request must not reach the upstream once more.
    if (viaIncludes(request.headers.via, options.viaName)) throw loopDetected()
    const rewrite = protocol !== undefined
    const declared = Number(request.headers['content-length'])
    if (declared > maxBodySize) throw refuseTooLarge(request, maxBodySize)

    // A client that goes away must stop the agent run it started (it costs money).
    const controller = new AbortController()
    const { graceOver } = options
    const cut = (): void => { controller.abort(serverShuttingDown('answer-cut')) }
    graceOver?.addEventListener('abort', cut)
    reply.raw.once('close', () => {
      graceOver?.removeEventListener('abort', cut)
      if (!reply.raw.writableFinished) controller.abort()
    })
    // A client that left gets nothing; a request cut by shutdown gets its 503.
    const stopped = (): FastifyReply => {
      const reason: unknown = controller.signal.reason
      if (reason instanceof HttpError) throw reason
      return reply
    }

    const method = request.method as Dispatcher.HttpMethod
    const hasBody = method !== 'GET' && method !== 'HEAD'
    let tooLarge = false
    const via = `${request.raw.httpVersion} ${options.viaName}`
    const outgoing = upstreamRequestHeaders(request.headers, { apiKey: options.upstreamApiKey, identity: rewrite, via })
    let body: Readable | Buffer | undefined
    if (hasBody && protocol !== undefined && options.rewriteRequestBody !== undefined) {
      // The history is read whole only when it has to change (data-uri mode).
      const whole = await readRequest(request, maxBodySize)
      const text = whole.toString('utf8')
      const shortened = options.rewriteRequestBody(text)
      body = shortened === text ? whole : Buffer.from(shortened, 'utf8')
      outgoing['content-length'] = String(body.length)
    } else if (hasBody) {
      // Not destroyed when the limit is hit: the rest is drained instead, see refuseTooLarge.
      body = Readable.from(limitBody(request.raw.iterator({ destroyOnReturn: false }), maxBodySize, () => { tooLarge = true }), { objectMode: false })
    }

    // Outside the try below: only what the request to the upstream throws is the upstream's failure.
    const path = upstream.pathFor(request.url)
    let response: Dispatcher.ResponseData
    const sent = performance.now()
    try {
      response = await upstream.dispatcher.request({
        path,
        method,
        headers: outgoing,
        body: body ?? null,
        signal: controller.signal
      })
    } catch (err) {
      if (tooLarge) throw refuseTooLarge(request, maxBodySize)
      if (controller.signal.aborted) return stopped()
      throw classifyUpstreamError(err)
    }

    options.onUpstreamHeaders?.(request, (performance.now() - sent) / 1000)
    const { statusCode, headers } = response
    const ok = statusCode >= 200 && statusCode < 300 && isPlain(headers['content-encoding'])
    const type = headers['content-type']
    if (protocol !== undefined && ok && isEventStream(type)) {
      return streamEvents(request, reply, protocol, response, controller)
    }
    if (protocol !== undefined && ok && isJson(type)) {
      const iterator = response.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>
      let read: { whole: boolean, chunks: Buffer[] }
      try {
        read = await readBounded(iterator, maxJsonSize)
      } catch (err) {
        if (controller.signal.aborted) return stopped()
        // Headers came, the body did not: the same failure as a stream cut short.
        throw upstreamStreamError(err)
      }
      if (read.whole) {
        const raw = Buffer.concat(read.chunks)
        const text = raw.toString('utf8')
        const session = options.newSession(request)
        const rewritten = protocol.rewriteBody(text, session)
        options.onAnswer?.({ request, summary: Promise.resolve({ ...session.tally }) })
        // Bytes, not a string: Fastify would add `; charset=utf-8` to the upstream's
        // content-type, and an unchanged body keeps even bytes that are not UTF-8.
        const out = rewritten === text ? raw : Buffer.from(rewritten, 'utf8')
        return reply.code(statusCode).headers(clientResponseHeaders(headers, true)).send(out)
      }
      reply.code(statusCode).headers(clientResponseHeaders(headers, false))
      return reply.send(Readable.from(prepend(read.chunks, iterator)))
    }
    reply.code(statusCode).headers(clientResponseHeaders(headers, false))
    return reply.send(response.body)
  }

  /**
   * The event stream goes out through the raw response (hijacked from Fastify), one
   * write per upstream read; Fastify's onResponse hooks still run when it finishes.
   */
  function streamEvents (request: FastifyRequest, reply: FastifyReply, protocol: Protocol, response: Dispatcher.ResponseData, controller: AbortController): FastifyReply {
    const session = options.newSession(request)
    const handler = protocol.newHandler(session, { dropNamedEvents: options.dropNamedEvents === true })
    reply.hijack()
    reply.raw.writeHead(response.statusCode, { ...clientResponseHeaders(response.headers, true), ...SSE_HEADERS })
    const pump = pumpEvents(reply.raw, response.body, createEventStream(handler), {
      signal: controller.signal,
      abort: () => { controller.abort() },
      keepaliveMs: options.keepaliveMs,
      complete: () => handler.complete,
      onUpstreamError: (err) => { request.log.warn({ cause: describeCause(err) }, 'upstream stream failed') }
    })
    options.onAnswer?.({ request, summary: pump.done.then((stream) => ({ ...session.tally, stream })) })
    const { streams } = options
    if (streams !== undefined) {
      streams.add(pump)
      pump.done.finally(() => streams.delete(pump))
    }
    return reply
  }
}

/**
 * The client may still be sending. Left unread, the rest of its body stalls the
 * connection: a client that reads only after sending (most SDKs) never sees the 413, and
 * the open request holds up shutdown. Closing at once instead lets the kernel answer
 * with a reset that can destroy the 413 on its way. So the rest is read and dropped (a
 * lingering close, as nginx does), for at most `LINGER_MS`.
 */
function refuseTooLarge (request: FastifyRequest, limit: number): HttpError {
  const { raw } = request
  // Node unsets it once the request is destroyed (the client is already gone).
  const socket = raw.socket as Socket | null
  if (socket !== null && !socket.destroyed) {
    const timer = setTimeout(() => { socket.destroy() }, LINGER_MS)
    timer.unref()
    // Whichever comes first takes the other listener along: a kept-alive connection
    // may carry many refused requests.
    const stop = (): void => {
      clearTimeout(timer)
      raw.off('end', stop)
      socket.off('close', stop)
    }
    raw.once('end', stop)
    socket.once('close', stop)
    raw.resume()
  }
  return requestTooLarge(limit)
}

/** Reads a request body whole, refusing it (413) once it grows past `limit` bytes. */
async function readRequest (request: FastifyRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  try {
    for await (const chunk of limitBody(request.raw.iterator({ destroyOnReturn: false }), limit, () => {})) chunks.push(chunk)
  } catch {
    throw refuseTooLarge(request, limit)
  }
  return Buffer.concat(chunks)
}

/** Streams a request body upstream, failing once it grows past `limit` bytes. */
async function * limitBody (source: AsyncIterable<Buffer>, limit: number, onTooLarge: () => void): AsyncGenerator<Buffer> {
  let size = 0
  for await (const chunk of source) {
    size += chunk.length
    if (size > limit) {
      onTooLarge()
      throw requestTooLarge(limit)
    }
    yield chunk
  }
}

/**
 * Reads a body whole if it fits in `limit` bytes. Past the limit it stops and returns what
 * it read, so the caller can still pass the whole body through unchanged.
 */
async function readBounded (body: AsyncIterator<Buffer>, limit: number): Promise<{ whole: boolean, chunks: Buffer[] }> {
  const chunks: Buffer[] = []
  let size = 0
  for (let next = await body.next(); next.done !== true; next = await body.next()) {
    chunks.push(next.value)
    size += next.value.length
    if (size > limit) return { whole: false, chunks }
  }
  return { whole: true, chunks }
}

async function * prepend (head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield * head
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value
}
