/**
 * `GET|HEAD /images/<name>`: serves the files the resolver accepts, and nothing else.
 * The browser's URL is hostile input: it is checked on the raw bytes first (the router
 * decodes and @fastify/send normalizes, each of which has hidden a traversal before),
 * then `resolveName` decides, and @fastify/send streams the checked real file with
 * ETag, Last-Modified, 304 and Range handled for us. A validly signed name from before
 * folder ids (`/images/a.png`) gets a permanent redirect to the file's one name.
 */
import os from 'node:os'
import path from 'node:path'
import send from '@fastify/send'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LATER } from '../files/compactor.js'
import type { Compactor } from '../files/compactor.js'
import { attachmentDisposition } from '../files/disposition.js'
import { extensionOf } from '../files/file-types.js'
import { chooseFormat } from '../files/negotiate.js'
import type { CompactSetting } from '../files/negotiate.js'
import type { DeliverableFile, FileResolver } from '../files/resolver.js'
import type { Signer } from '../files/signing.js'
import { createFileCache } from '../files/file-cache.js'
import { ERRORS, NOT_FOUND_BODY, errorBody } from '../errors.js'
import type { ErrorBody } from '../errors.js'

export interface ImagesOptions {
  files: FileResolver
  /** When set, a name is served only with its valid `?sig=`. */
  signer?: Signer | undefined
  /** Told about each file about to be sent (the store keeps its recently used files). */
  onDeliver?: (delivery: DeliverableFile) => void
  /** Compact renderings for browsers that accept them; the files as they are without. */
  compact?: { setting: CompactSetting, compactor: Compactor } | undefined
}

/** Where the route is mounted; names follow it directly. */
export const IMAGES_PREFIX = '/images'

/** One day: names are stable, but a regenerated file keeps its name, so not `immutable`. */
const MAX_AGE_MS = 86_400_000

// Headers that make a request more than "send me the file".
const CONDITIONAL = ['range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']

// What @fastify/send answers for the same file, so both paths look alike.
const CACHE_CONTROL = `public, max-age=${MAX_AGE_MS / 1000}`
// For an original sent while its compact rendering is not ready yet.
const REVALIDATE = 'no-cache'
// Every extension the resolver delivers is in send's table; the fallback is for the type.
/* c8 ignore next */
const contentType = (file: string): string => send.mime.getType(file) ?? 'application/octet-stream'

// Answers to a valid file but an impossible Range or If-Match, by the status
// @fastify/send reports them with; fixed for the same reason.
const SEND_ERROR_BODIES: ReadonlyMap<number, ErrorBody> = new Map([
  [ERRORS.precondition_failed.status, errorBody('precondition_failed')],
  [ERRORS.range_not_satisfiable.status, errorBody('range_not_satisfiable')]
])

// Raw-URL checks. Each stops a bypass that survives some later decoding step; a name
// that `encodeName` produced never matches any of them.

// `%2f` / `%5c`: the router decodes them into separators after our check would have
// seen one segment (`sub%2f..%2fsecret.png`).
const ENCODED_SEPARATOR = /%2f|%5c/i
// `\`: a separator to browsers' URL parsers, to Windows and to @fastify/send.
const BACKSLASH = /\\/
// `.` and `..` segments, plain, percent-encoded or mixed (`.%2e`).
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i
// `%25` before a dot, separator or NUL: survives one decoding layer (a proxy in front
// of us, or a second decode in a library) and becomes `..`, `/` or NUL there.
const DOUBLE_ENCODED = /%25(?:2e|2f|5c|00)/i
// Encoded controls, NUL first of all: `x.png%00.png` passes an extension test and is
// cut at the NUL by C code.
const ENCODED_CONTROL = /%(?:[01][0-9a-f]|7f)/i
// `//`: an empty segment turns `/images//etc/passwd` into an absolute path for
// `path.join`-style code.
const EMPTY_SEGMENT = /\/\//

const RAW_URL_GUARDS = [ENCODED_SEPARATOR, BACKSLASH, DOT_SEGMENT, DOUBLE_ENCODED, ENCODED_CONTROL, EMPTY_SEGMENT]

/**
 * The raw, still-encoded name after the mount point, or `undefined` when the URL is
 * not a plain name. The query string is ignored: cache busters must not change the file.
 */
export function rawNameFromUrl (url: string, mount: string): string | undefined {
  const query = url.indexOf('?')
  const pathname = query === -1 ? url : url.slice(0, query)
  if (!pathname.startsWith(mount)) return undefined
  const name = pathname.slice(mount.length)
  if (RAW_URL_GUARDS.some((guard) => guard.test(name))) return undefined
  return name
}

// 301 rather than 308: for GET and HEAD, the only methods routed here, they mean the same,
// and every browser, client and cache knows 301 (nginx's proxy_cache keeps 200, 301 and
// 302 by default, not 308).
const MOVED_STATUS = 301
// The move itself is permanent, but its target is a lookup (the first folder holding the
// name) that changes when that folder loses the file: kept as long as the file itself.
const MOVED_CACHE_CONTROL = CACHE_CONTROL

/**
 * Where an old name has moved, as a path relative to the request's own URL: from
 * `<mount>/a/b.png`, `../<name>` reaches `<mount>/<name>`. Relative, because the
 * browser's URL may carry the public URL's path (`/imagegate/images/…`) that a reverse
 * proxy removed before imagegate saw it. Built from the checked `name` and the number of
 * segments of `oldName` only, so nothing of the request is echoed.
 */
export function movedLocation (oldName: string, name: string): string {
  const depth = oldName.split('/').length
  return '../'.repeat(depth - 1) + name
}

// What @fastify/send or the memory path may already have set for the file when an error
// comes later (a file that became unreadable fails only when its stream opens). Left in
// place they would describe the error body as the image, with the image's ETag.
const FILE_HEADERS = ['content-type', 'content-length', 'content-range', 'etag', 'last-modified', 'accept-ranges', 'cache-control']

/** A fixed JSON error body with its status from the error table, and none of the file's headers. */
function sendError (reply: FastifyReply, body: ErrorBody, contentRange?: string): FastifyReply {
  for (const name of FILE_HEADERS) reply.removeHeader(name)
  if (contentRange !== undefined) reply.header('content-range', contentRange)
  return reply
    .code(ERRORS[body.error.code].status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send(body)
}

function notFound (reply: FastifyReply): FastifyReply {
  return sendError(reply, NOT_FOUND_BODY)
}

/**
 * Registers the image route and its 404 handler in their own encapsulated scope under
 * `/images`, so @fastify/static's `reply.sendFile` decorator stays private to it.
 */
export async function registerImages (app: FastifyInstance, options: ImagesOptions): Promise<void> {
  const { files, signer, onDeliver, compact } = options
  const cache = createFileCache()
  // @fastify/static wants an existing root and refuses duplicates; it is only a
  // default, since every `sendFile` below passes the checked real root explicitly.
  const staticRoots = [...new Set(files.roots)]
  const staticRoot = staticRoots.length === 0 ? os.tmpdir() : staticRoots

  await app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: staticRoot,
      serve: false,
      dotfiles: 'deny',
      index: false,
      list: false,
      maxAge: MAX_AGE_MS,
      suppressWarning: true
    })

    const mount = scope.prefix + '/'

    scope.addHook('onRequest', async (_request, reply) => {
      // Images are embedded by a web UI on another origin (Open WebUI) and must never
      // be sniffed into something executable.
      reply.header('x-content-type-options', 'nosniff')
      reply.header('access-control-allow-origin', '*')
      reply.header('cross-origin-resource-policy', 'cross-origin')
      // If a file is ever opened directly, nothing in it may run or load.
      reply.header('content-security-policy', "default-src 'none'; sandbox")
    })

    scope.setNotFoundHandler((_request, reply) => notFound(reply))

    scope.setErrorHandler((error, request, reply) => {
      // @fastify/send reports 412 and 416 as errors, the 416 with a Content-Range
      // header telling the client the real length.
      const { statusCode, headers } = error as { statusCode?: number, headers?: Record<string, string> }
      const body = SEND_ERROR_BODIES.get(Number(statusCode))
      if (body !== undefined) {
        return sendError(reply, body, headers?.['Content-Range'])
      }
      // A file that became unreadable after the check. The default handler would put
      // the error message, which holds the file's path, in the body.
      request.log.warn({ err: error }, 'image could not be sent')
      return notFound(reply)
    })

    scope.route({
      method: ['GET', 'HEAD'],
      url: '/*',
      handler (request, reply) {
        // The router's decoded `*` param is not trusted: the raw URL is what we check.
        // `url` is only ever unset on a request object node:http did not parse.
        const rawName = rawNameFromUrl(request.raw.url as string, mount)
        // A missing or wrong signature is a 404 like any unknown name: a 403 would
        // confirm that the file exists.
        const signed = rawName !== undefined && (signer === undefined || signer.verify(rawName, (request.query as Record<string, unknown>).sig))
        if (!signed) return notFound(reply)
        const delivery = files.resolveName(rawName)
        if (delivery === undefined) {
          // A link from before folder ids, signed then with the same key over the same
          // bytes: it points at the file's one name, and never serves the file itself.
          const moved = files.resolveLegacyName(rawName)
          if (moved === undefined) return notFound(reply)
          const query = signer === undefined ? '' : `?sig=${signer.sign(moved.name)}`
          return reply
            .code(MOVED_STATUS)
            .header('location', movedLocation(rawName, moved.name) + query)
            .header('cache-control', MOVED_CACHE_CONTROL)
            .send()
        }
        onDeliver?.(delivery)
        const fileName = decodeURIComponent(delivery.name.slice(delivery.name.lastIndexOf('/') + 1))
        // Documents are downloaded, never shown: a browser that could render one (a PDF,
        // a text file) does so on its own origin, not imagegate's.
        if (delivery.kind === 'document') reply.header('content-disposition', attachmentDisposition(fileName))
        if (compact === undefined || delivery.kind !== 'image') return sendFile(request, reply, delivery.root, delivery.realPath)
        // Both renderings live at one URL: caches must key them by Accept, 304s included.
        reply.header('vary', 'Accept')
        // `?original` only picks the rendering of the file the signed name already chose.
        const query = request.query as Record<string, unknown>
        const format = chooseFormat({ setting: compact.setting, accept: request.headers.accept, extension: extensionOf(fileName), original: Object.hasOwn(query, 'original') })
        if (format === undefined) return sendFile(request, reply, delivery.root, delivery.realPath)
        return compact.compactor.rendering(delivery.realPath, format, { encode: request.method === 'GET' }).then((rendering) => {
          if (rendering === undefined) return sendFile(request, reply, delivery.root, delivery.realPath)
          // The original stands in while the rendering is made: the browser must ask
          // again next time instead of keeping it for a day.
          if (rendering === LATER) return sendFile(request, reply, delivery.root, delivery.realPath, REVALIDATE)
          return sendFile(request, reply, rendering.root, rendering.path)
        })
      }
    })

    /**
     * Sends a checked real file below its real root. Plain GETs of small files come from
     * memory; ranges and conditional requests (rare: browsers fetch a new image whole) go
     * to @fastify/send, which does them right.
     */
    function sendFile (request: FastifyRequest, reply: FastifyReply, root: string, realPath: string, cacheControl = CACHE_CONTROL): FastifyReply {
      if (request.method === 'GET' && !CONDITIONAL.some((name) => request.headers[name] !== undefined)) {
        const cached = cache.get(realPath)
        if (cached !== undefined) {
          return reply
            .header('content-type', contentType(realPath))
            .header('cache-control', cacheControl)
            .header('accept-ranges', 'bytes')
            .header('etag', cached.etag)
            .header('last-modified', cached.lastModified)
            .send(cached.bytes)
        }
      }
      // Relative to the real root, so no symlink is followed again on the way out.
      const relative = path.relative(root, realPath).split(path.sep).join('/')
      if (cacheControl === CACHE_CONTROL) return reply.sendFile(relative, root)
      return reply.header('cache-control', cacheControl).sendFile(relative, root, { cacheControl: false })
    }
  }, { prefix: IMAGES_PREFIX })
}
