/**
 * Bytes allocated per forwarded event by imagegate's stream transform (dist/, built by
 * `npm run build`), without a server: reads of 16 events go through createEventStream
 * and the chat transform, and the growth of V8's heap between two points with no
 * garbage collection in between is divided by the events. Run with a young generation
 * large enough that none happens:
 *
 *   npm run build && node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 bench/alloc.mjs
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import { createEventStream } from '../dist/sse/event-stream.js'
import { createChatCompletionsHandler } from '../dist/sse/chat-completions.js'
import { createRewriter } from '../dist/rewrite/rewriter.js'

const EVENTS_PER_READ = 16
const READS = 1000

const head = '{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1777026000, "model": "hermes-agent", "choices": [{"index": 0, '
const SHAPES = {
  'event without text (tool call delta)': `data: ${head}"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\\"q\\": 1}"}}]}, "finish_reason": null}]}\n\n`,
  'event without text (reasoning delta)': `data: ${head}"delta": {"reasoning": "thinking about it"}, "finish_reason": null}]}\n\n`,
  'content delta that does not change': `data: ${head}"delta": {"content": "plain words here "}, "finish_reason": null}]}\n\n`
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

for (const [label, event] of Object.entries(SHAPES)) {
  const { bytes, clean } = await measure(event)
  console.log(`${label}: ${bytes.toFixed(0)} bytes per event${clean ? '' : ' (a collection ran in between: not a valid figure)'}`)
}
