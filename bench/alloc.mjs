/**
 * Bytes allocated per forwarded event by imagegate's stream transform (dist/, built by
 * `npm run build`), without a server: reads of 16 events go through createEventStream
 * and the chat or Responses transform, and the growth of V8's heap between two points
 * with no garbage collection in between is divided by the events. Run with a young
 * generation large enough that none happens:
 *
 *   npm run build && node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 bench/alloc.mjs
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import { createEventStream } from '../dist/sse/event-stream.js'
import { createChatCompletionsHandler } from '../dist/sse/chat-completions.js'
import { createResponsesHandler } from '../dist/sse/responses.js'
import { createRewriter } from '../dist/rewrite/rewriter.js'

const EVENTS_PER_READ = 16
const READS = 1000

const head = '{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1777026000, "model": "hermes-agent", "choices": [{"index": 0, '
const SHAPES = {
  'event without text (tool call delta)': `data: ${head}"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\\"q\\": 1}"}}]}, "finish_reason": null}]}\n\n`,
  'event without text (reasoning delta)': `data: ${head}"delta": {"reasoning": "thinking about it"}, "finish_reason": null}]}\n\n`,
  'content delta that does not change': `data: ${head}"delta": {"content": "plain words here "}, "finish_reason": null}]}\n\n`
}

/**
 * Responses text deltas: hermes' shape (Python separators) and OpenAI's (compact, a
 * `sequence_number` first and an `obfuscation` string that changes every event). The
 * transform keeps a part's whole text until the part ends, so these run as answers of
 * `RESPONSES_DELTAS` deltas, each in a new stream: the figure includes an answer's
 * set-up (its first delta is parsed) spread over its deltas, as in a real stream.
 */
const RESPONSES_DELTAS = 400
const responsesDelta = (data) => `event: response.output_text.delta\ndata: ${data}\n\n`
const RESPONSES_SHAPES = {
  'Responses text delta that does not change (hermes)': (i) => responsesDelta(`{"type": "response.output_text.delta", "sequence_number": ${i + 2}, "item_id": "msg_91ab", "output_index": 0, "content_index": 0, "delta": "plain words here ", "logprobs": []}`),
  'Responses text delta that does not change (OpenAI)': (i) => responsesDelta(`{"type":"response.output_text.delta","sequence_number":${i + 4},"item_id":"msg_06c1a26fd89d07f20068dd937ecbd48197bd91dc501bd4a4d4","output_index":2,"content_index":0,"delta":" plain words","logprobs":[],"obfuscation":"${'mqejtF5T0wGk65'.slice(i % 7)}"}`)
}

let collections = 0
new PerformanceObserver((list) => { collections += list.getEntries().length }).observe({ entryTypes: ['gc'] })

async function measure (event) {
  const stream = createEventStream(createChatCompletionsHandler(() => createRewriter({ resolve: () => undefined })))
  const read = Buffer.from(event.repeat(EVENTS_PER_READ))
  for (let i = 0; i < READS; i++) stream.feed(read)
  globalThis.gc?.()
  // Entries reach the observer a little later.
  await sleep(200)
  const seen = collections
  const before = v8.getHeapStatistics().used_heap_size
  for (let i = 0; i < READS; i++) stream.feed(read)
  const after = v8.getHeapStatistics().used_heap_size
  await sleep(200)
  return { bytes: (after - before) / (READS * EVENTS_PER_READ), clean: collections === seen }
}

/** The same, for answers of `RESPONSES_DELTAS` deltas: reads of 16 of them, a new stream per answer. */
async function measureResponses (delta) {
  const reads = []
  for (let r = 0; r < RESPONSES_DELTAS / EVENTS_PER_READ; r++) {
    let read = ''
    for (let e = 0; e < EVENTS_PER_READ; e++) read += delta(r * EVENTS_PER_READ + e)
    reads.push(Buffer.from(read))
  }
  const answer = () => {
    const stream = createEventStream(createResponsesHandler(() => createRewriter({ resolve: () => undefined }), (text) => text))
    for (const read of reads) stream.feed(read)
    stream.end()
  }
  const answers = READS / reads.length
  for (let i = 0; i < answers; i++) answer()
  globalThis.gc?.()
  await sleep(200)
  const seen = collections
  const before = v8.getHeapStatistics().used_heap_size
  for (let i = 0; i < answers; i++) answer()
  const after = v8.getHeapStatistics().used_heap_size
  await sleep(200)
  return { bytes: (after - before) / (answers * RESPONSES_DELTAS), clean: collections === seen }
}

const results = []
for (const [label, event] of Object.entries(SHAPES)) results.push([label, await measure(event)])
for (const [label, delta] of Object.entries(RESPONSES_SHAPES)) results.push([label, await measureResponses(delta)])
for (const [label, { bytes, clean }] of results) {
  console.log(`${label}: ${bytes.toFixed(0)} bytes per event${clean ? '' : ' (a collection ran in between: not a valid figure)'}`)
}
