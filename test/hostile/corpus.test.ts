// Streams recorded from real backends (the shared corpus next to the repository), replayed
// through a real imagegate from a real mock upstream, whole and cut into uneven reads.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { dataLines, rawEvents } from '../fixtures/gate.js'
import { postJson } from '../fixtures/http.js'
import { sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'

const CORPUS = new URL('../../../shared/corpus/', import.meta.url)

/** Uneven reads, 1 to 997 bytes, the same for every run. */
function unevenPieces (bytes: Buffer): Buffer[] {
  const pieces: Buffer[] = []
  for (let at = 0, size = 1; at < bytes.length; at += size, size = (size * 31 + 7) % 997 + 1) pieces.push(bytes.subarray(at, at + size))
  return pieces
}

/** Answer text per choice (chat) or per part (Responses deltas), in order. */
function texts (body: string): string {
  const byChoice = new Map<unknown, string>()
  const add = (index: unknown, piece: unknown): void => { byChoice.set(index, (byChoice.get(index) ?? '') + String(piece)) }
  for (const data of dataLines(body)) {
    let event: any
    try {
      event = JSON.parse(data)
    } catch {
      continue
    }
    if (event?.type === 'response.output_text.delta') add(`${String(event.item_id)}/${String(event.content_index)}`, event.delta)
    for (const choice of Array.isArray(event?.choices) ? event.choices : []) {
      const content = choice?.delta?.content
      if (typeof content === 'string') add(choice.index, content)
      if (Array.isArray(content)) for (const part of content) if (part?.type === 'text') add(choice.index, part.text)
    }
  }
  return JSON.stringify([...byChoice])
}

/** Events with no answer text in them. */
const others = (body: string): string[] => rawEvents(body).filter((block) => texts(block) === '[]' && !block.includes('output_text.delta'))

const SEQUENCE = /("sequence_number"\s*:\s*)\d+/
/** An event with its sequence number left out. */
const unnumbered = (block: string): string => block.replace(SEQUENCE, '$1#')
/** The distinct steps between one event's sequence number and the next one's. */
const steps = (body: string): number[] => {
  const numbers = rawEvents(body).map((block) => SEQUENCE.exec(block)?.[0]).filter((found) => found !== undefined).map((found) => Number(/\d+$/.exec(found)?.[0]))
  return [...new Set(numbers.slice(1).map((n, i) => n - (numbers[i] as number)))]
}

/** `body` with a `!` after the text of its last Responses text delta, if it has one. */
function heldAtEnd (body: string): string | undefined {
  const at = body.lastIndexOf('"response.output_text.delta"')
  if (at === -1 || !body.includes('"sequence_number"')) return undefined
  const end = body.indexOf('\n\n', at)
  const block = body.slice(at, end === -1 ? undefined : end)
  const changed = block.replace(/("delta"\s*:\s*"(?:[^"\\]|\\.)*)"/, '$1!"')
  return changed === block ? undefined : body.slice(0, at) + changed + body.slice(at + block.length)
}

// The recorded streams live beside the repository, not in it; without them the replay
// is reported as skipped, never as passed.
const skip = existsSync(CORPUS) ? false : `no corpus at ${CORPUS.pathname}: the recorded streams are not replayed`
t.test('recorded streams come out as the upstream sent them', { skip }, async (t) => {
  const { upstream, gate } = await startProxy(t)
  const files = readdirSync(CORPUS).filter((name) => name.endsWith('.sse')).sort()
  t.ok(files.length > 0, 'the corpus has streams')
  // No Responses recording has a `!` in its text: each is also replayed with one at the
  // end of its last text delta, which imagegate holds and releases before the part ends.
  const recordings = files.flatMap((name): Array<[string, string]> => {
    const text = readFileSync(new URL(name, CORPUS), 'utf8')
    const held = heldAtEnd(text)
    return held === undefined ? [[name, text]] : [[name, text], [`${name} with a "!" held at the end`, held]]
  })
  t.ok(recordings.length > files.length, 'some recordings are replayed with a held "!" too')
  for (const [name, input] of recordings) {
    const bytes = Buffer.from(input, 'utf8')
    const path = /"type":\s*"response\./.test(input) ? '/v1/responses' : '/v1/chat/completions'
    for (const [label, pieces] of [['whole', [bytes]], ['uneven reads', unevenPieces(bytes)]] as const) {
      upstream.handle(sse([...pieces]))
      const res = await postJson(gate.url, path, '{"model": "m", "stream": true, "input": "hi", "messages": []}')
      t.equal(res.status, 200, `${name} (${label}): 200`)
      t.equal(texts(res.text), texts(input), `${name} (${label}): the same answer text`)
      // A body with no end of answer at all (decoder test cases) is a cut answer.
      const cut = !/\[DONE\]|"finish_reason":\s*"|event: error|response\.(completed|failed)/.test(input)
      if (cut) {
        t.ok(res.text.startsWith(input) && res.text.slice(input.length).includes('upstream_stream_error'), `${name} (${label}): every byte, then the cut reported`)
        continue
      }
      t.notOk(res.text.includes('upstream_stream_error') || res.text.includes('upstream_event_too_large'), `${name} (${label}): no error of imagegate's own`)
      if (!input.includes('!')) {
        t.ok(Buffer.from(res.text, 'utf8').equals(bytes), `${name} (${label}): byte for byte`)
      } else if (path !== '/v1/responses') {
        // A held `!` goes out with the next text: only text events differ, inside their text.
        t.same(others(res.text), others(input), `${name} (${label}): every event without text byte for byte`)
      } else {
        // Text a part still holds when it ends goes out in a delta of its own, and every
        // later event's sequence_number moves up to make room: apart from that number,
        // the events without text are the upstream's bytes, and the numbers still count
        // up as the upstream's did.
        t.same(others(res.text).map(unnumbered), others(input).map(unnumbered), `${name} (${label}): every event without text byte for byte, but its number`)
        t.same(steps(res.text), steps(input), `${name} (${label}): sequence numbers without gaps or repeats`)
      }
    }
  }
})
