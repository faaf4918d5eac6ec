import fs from 'node:fs'
import t from 'tap'
import * as errors from '../src/errors.js'
import {
  ConfigError, ERRORS, HttpError, ImagegateError,
  errorBody, errorMessage, internalError, malformedRequest, requestTooLarge, serverShuttingDown, toHttpError, upstreamStreamError
} from '../src/errors.js'
import type { ErrorBody, ErrorCode } from '../src/errors.js'

/**
 * Every code with its status and the whole body a client gets, written out: the one
 * place that pins imagegate's error bodies byte for byte. The route tests take their
 * expected bodies from the table; this one proves the table says what clients have seen.
 * Each row makes its answer as imagegate does: an error from the code's factory, or for
 * a code only ever sent as a fixed body, that body.
 */
const WIRE: Array<[ErrorCode, number, string, () => HttpError | ErrorBody]> = [
  ['upstream_unreachable', 502, '{"error":{"message":"imagegate could not reach the upstream API","type":"upstream_error","code":"upstream_unreachable"}}', () => errors.upstreamUnreachable(undefined)],
  ['upstream_timeout', 504, '{"error":{"message":"the upstream API did not answer in time","type":"upstream_error","code":"upstream_timeout"}}', () => errors.upstreamTimeout(undefined)],
  ['upstream_stream_error', 502, '{"error":{"message":"the upstream API ended the response early","type":"upstream_error","code":"upstream_stream_error"}}', () => errors.upstreamStreamError()],
  ['upstream_event_too_large', 502, '{"error":{"message":"the upstream sent an event larger than imagegate accepts","type":"upstream_error","code":"upstream_event_too_large"}}', () => errors.upstreamEventTooLarge()],
  ['loop_detected', 508, '{"error":{"message":"imagegate received a request it had forwarded itself: its upstream leads back to it; set --upstream to the agent backend","type":"upstream_error","code":"loop_detected"}}', () => errors.loopDetected()],
  ['request_too_large', 413, '{"error":{"message":"request body exceeds 52428800 bytes","type":"invalid_request_error","code":"request_too_large"}}', () => errors.requestTooLarge(52428800)],
  ['server_shutting_down', 503, '{"error":{"message":"imagegate is shutting down; the answer was cut","type":"server_error","code":"server_shutting_down"}}', () => errors.serverShuttingDown('answer-cut')],
  ['server_shutting_down', 503, '{"error":{"message":"imagegate is shutting down; the request was not forwarded, send it again","type":"server_error","code":"server_shutting_down"}}', () => errors.serverShuttingDown('not-forwarded')],
  ['not_found', 404, '{"error":{"message":"not found","type":"not_found","code":"not_found"}}', () => errors.notFound()],
  ['precondition_failed', 412, '{"error":{"message":"precondition failed","type":"invalid_request_error","code":"precondition_failed"}}', () => errorBody('precondition_failed')],
  ['range_not_satisfiable', 416, '{"error":{"message":"range not satisfiable","type":"invalid_request_error","code":"range_not_satisfiable"}}', () => errorBody('range_not_satisfiable')],
  ['malformed_url', 400, '{"error":{"message":"the request URL is malformed","type":"invalid_request_error","code":"malformed_url"}}', () => errors.malformedUrl()],
  ['unsupported_media_type', 415, '{"error":{"message":"the Content-Type header is not a valid media type","type":"invalid_request_error","code":"unsupported_media_type"}}', () => errors.unsupportedMediaType()],
  ['missing_content_type', 400, '{"error":{"message":"a QUERY request must have a Content-Type header","type":"invalid_request_error","code":"missing_content_type"}}', () => errors.missingContentType()],
  ['malformed_request', 400, '{"error":{"message":"the request is not valid HTTP","type":"invalid_request_error","code":"malformed_request"}}', () => errors.malformedRequest()],
  ['request_header_too_large', 431, '{"error":{"message":"the request head is larger than imagegate accepts","type":"invalid_request_error","code":"request_header_too_large"}}', () => errors.requestHeaderTooLarge()],
  ['request_timeout', 408, '{"error":{"message":"the request head did not arrive in time","type":"invalid_request_error","code":"request_timeout"}}', () => errors.requestTimeout()],
  ['internal_error', 500, '{"error":{"message":"internal error","type":"server_error","code":"internal_error"}}', () => errors.internalError()]
]

t.test('each code: its status and the whole body, from its factory or from errorBody', async t => {
  for (const [code, status, wire, make] of WIRE) {
    const made = make()
    t.equal(ERRORS[code].status, status, `${code}: the table's status`)
    if (!(made instanceof HttpError)) {
      t.equal(JSON.stringify(made), wire, `${code}: the whole body`)
      continue
    }
    t.ok(made instanceof ImagegateError, `${code}: an HttpError, and an ImagegateError`)
    t.equal(made.code, code, `${code}: its code`)
    t.equal(made.statusCode, status, `${code}: status ${status}`)
    t.equal(JSON.stringify(made.toBody()), wire, `${code}: the whole body from the error`)
    const { error: { message } } = JSON.parse(wire) as { error: { message: string } }
    t.equal(made.message, message, `${code}: the message`)
  }
  t.same([...new Set(WIRE.map(([code]) => code))].sort(), Object.keys(ERRORS).sort(), 'every code of the table has a row, and nothing else')
})

t.test('errorBody builds the same bodies, frozen, with the value a message carries', async t => {
  const fixed = errorBody('not_found')
  t.equal(JSON.stringify(fixed), '{"error":{"message":"not found","type":"not_found","code":"not_found"}}', 'a fixed body')
  t.ok(Object.isFrozen(fixed) && Object.isFrozen(fixed.error), 'frozen, so it can be shared')
  t.same(errorBody('request_too_large', 10), requestTooLarge(10).toBody(), 'the limit goes into the message')
  t.same(errorBody('server_shutting_down', 'not-forwarded'), serverShuttingDown('not-forwarded').toBody(), 'so does the moment')
  t.equal(errorMessage('request_too_large', 7), 'request body exceeds 7 bytes', 'errorMessage alone')
})

t.test('factories keep the cause, and only a cause that exists', async t => {
  const cause = new Error('socket hang up')
  t.equal(upstreamStreamError(cause).cause, cause, 'the cause is kept')
  t.notOk('cause' in upstreamStreamError(), 'none when there is none')
})

t.test('toHttpError maps the errors of Fastify and Node to codes of the table', async t => {
  const cases: Array<[string, unknown, ErrorCode]> = [
    ['a bad URL', { code: 'FST_ERR_BAD_URL', statusCode: 400 }, 'malformed_url'],
    ['an invalid Content-Type', { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }, 'unsupported_media_type'],
    ['a QUERY without Content-Type', { code: 'FST_ERR_ROUTE_MISSING_CONTENT_TYPE', statusCode: 400 }, 'missing_content_type'],
    ['Fastify\'s not found', { code: 'FST_ERR_NOT_FOUND', statusCode: 404 }, 'not_found'],
    ['a head too large', { code: 'HPE_HEADER_OVERFLOW' }, 'request_header_too_large'],
    ['a head too slow', { code: 'ERR_HTTP_REQUEST_TIMEOUT' }, 'request_timeout'],
    ['an unknown error with a client status', Object.assign(new Error('Request body is too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 'internal_error'],
    ['an error without a code', new Error('cannot read /srv/secret'), 'internal_error'],
    ['a code that is no string', { code: 42 }, 'internal_error'],
    ['not an error at all', 'boom', 'internal_error'],
    ['null', null, 'internal_error'],
    ['undefined', undefined, 'internal_error']
  ]
  for (const [label, err, code] of cases) {
    const mapped = toHttpError(err)
    t.equal(mapped.code, code, `${label}: ${code}`)
    t.equal(mapped.cause, err, `${label}: with the error as its cause`)
  }
  t.equal(toHttpError({ code: 'HPE_INVALID_METHOD' }, malformedRequest).code, 'malformed_request', 'the fallback is the caller\'s')
  const ours = internalError()
  t.equal(toHttpError(ours), ours, 'an HttpError is kept as it is')
})

t.test('a ConfigError is an exit code, never an HTTP error', async t => {
  const error = new ConfigError('--port: must be 0 to 65535, got "70000"')
  t.equal(error.exitCode, 2, 'exits 2, as a usage error')
  t.equal(error.code, 'ERR_CONFIG', 'its code')
  t.equal(error.name, 'ConfigError', 'its name')
  t.ok(error instanceof ImagegateError, 'an ImagegateError, so embedding programs catch it as before')
  t.notOk(error instanceof HttpError, 'not an HttpError')
  t.notOk('statusCode' in error, 'no HTTP status')
  t.equal(toHttpError(error).code, 'internal_error', 'reaching a client, it would be an internal error')
})

/** The README's Errors table: `code`, status and `type` of each row. */
function readmeErrorRows (): Array<[string, number, string]> {
  const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('\n## Errors\n')
  const end = readme.indexOf('\n## ', start + 1)
  if (start === -1) throw new Error('README.md has no "## Errors" section')
  const rows: Array<[string, number, string]> = []
  for (const line of readme.slice(start, end).split('\n')) {
    const row = /^\| `([a-z_]+)` \| (\d{3}) \| `([a-z_]+)` \|/.exec(line)
    if (row !== null) rows.push([row[1] as string, Number(row[2]), row[3] as string])
  }
  return rows
}

t.test('the README\'s Errors table lists exactly the codes of the table, with their status and type', async t => {
  const rows = readmeErrorRows()
  t.ok(rows.length > 0, 'the README has an errors table')
  const documented = rows.map(([code]) => code)
  t.same(documented.filter((code, at) => documented.indexOf(code) !== at), [], 'each code once')
  t.same([...documented].sort(), Object.keys(ERRORS).sort(), 'the same codes in both')
  for (const [code, status, type] of rows) {
    const spec = (ERRORS as Record<string, { status: number, type: string }>)[code]
    t.same([status, type], [spec?.status, spec?.type], `${code}: status and type as in errors.ts`)
  }
})
