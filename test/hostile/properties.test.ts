// Property tests of the whole streaming path without HTTP: random answers with every
// reference form, cut into random deltas, serialized as chat chunks in several layouts,
// cut again into random byte chunks, through createEventStream and the chat transform.
import t from 'tap'
import fc from 'fast-check'
import { createChatCompletionsHandler } from '../../src/sse/chat-completions.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { dataLines } from '../fixtures/gate.js'
import { DONE, chunk } from '../fixtures/chat.js'
import { DELIVERABLE, fakeResolve } from '../fixtures/resolve.js'
import { cutAt } from '../fixtures/split.js'

const NUM_RUNS = 10_000

const resolve = fakeResolve({ ...DELIVERABLE, '~/x.png': 'image', '/c/clip.mp4': 'media' })
/** The whole text through one rewriter: what every split of it must give. */
function whole (text: string): string {
  const rewriter = createRewriter({ resolve })
  return rewriter.push(text) + rewriter.end()
}

const DELIVERABLE_DESTS = ['/c/x.png', 'C:\\Users\\u\\x.png', 'file:///c/x.png', '~/x.png', '/root/.hermes/cache/images/apple.png']
const SPACED_DEST = '/c/a b.png'
const MEDIA_DESTS = ['/c/song.mp3', '/c/clip.mp4']
const UNDELIVERABLE_DESTS = ['/etc/passwd', '/c/missing.png', 'https://e.com/x.png', '../x.png', '/c/../x.png', 'x.png', '~/.ssh/id.png']

const dest = fc.constantFrom(...DELIVERABLE_DESTS, ...MEDIA_DESTS, ...UNDELIVERABLE_DESTS)
const alt = fc.constantFrom('a', '', 'an apple', 'a [nested] alt', 'é 🍎', 'a\\]b')

/** One reference in every supported form, deliverable or not. */
const reference = fc.oneof(
  fc.tuple(alt, dest).map(([a, d]) => `![${a}](${d})`),
  fc.tuple(alt, dest, fc.constantFrom('"title"', '\'t\'', '(t)')).map(([a, d, title]) => `![${a}](${d} ${title})`),
  fc.tuple(alt, fc.constantFrom(SPACED_DEST, ...DELIVERABLE_DESTS)).map(([a, d]) => `![${a}](<${d}>)`),
  dest.map((d) => `MEDIA:${d}`),
  dest.map((d) => `MEDIA: ${d}`),
  fc.constantFrom(SPACED_DEST, ...DELIVERABLE_DESTS, ...MEDIA_DESTS).map((d) => `MEDIA:"${d}"`),
  fc.constantFrom(SPACED_DEST, ...DELIVERABLE_DESTS).map((d) => `MEDIA:\`${d}\``),
  dest.map((d) => `MEDIA:${d}.`)
)

/** Where a reference sits: plain text, or one of the code contexts that keep it as it is. */
const placed = fc.tuple(reference, fc.constantFrom('plain', 'plain', 'plain', 'span', 'fence', 'tilde', 'indented', 'list')).map(([ref, where]) => {
  switch (where) {
    case 'span': return `\`${ref}\``
    case 'fence': return `\n\`\`\`md\n${ref}\n\`\`\`\n`
    case 'tilde': return `\n~~~\n${ref}\n~~~\n`
    case 'indented': return `\n\n    ${ref}\n\n`
    case 'list': return `\n- ${ref}\n`
    default: return ref
  }
})

/** Text between references: words, line breaks, non-ASCII, and near-miss syntax. */
const filler = fc.constantFrom(
  ' ', ' see ', 'Here you go: ', '\n', '\n\n', '. ', 'é', '🍎', '\u202e', '\u200b', '—',
  '!', '![', '](', ')', '[', ']', 'M', 'MEDIA', 'MEDIA:', '`', '``', '\\', '"', '<', '>', '    ', '\t', '- '
)

const answer = fc.array(fc.oneof({ weight: 1, arbitrary: placed }, { weight: 2, arbitrary: filler }), { maxLength: 24, size: 'medium' }).map((parts) => parts.join(''))

/** Random cut points of `length` units, as sorted offsets strictly inside it. */
const cutsOf = (length: number, max: number): fc.Arbitrary<number[]> =>
  length < 2
    ? fc.constant([])
    : fc.uniqueArray(fc.integer({ min: 1, max: length - 1 }), { maxLength: max, size: 'medium' }).map((cuts) => cuts.sort((a, b) => a - b))

/**
 * A content delta in one of the layouts upstreams use: hermes' (Python separators, ASCII
 * escapes, the in-place fast path), OpenAI's compact one with logprobs, and one with an
 * extra field, which only the general JSON path handles.
 */
function delta (layout: number, index: number, content: string): string {
  switch (layout) {
    case 0: return chunk({ content }, { index })
    case 1: return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":${index},"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":null}]}\n\n`
    default: return `data: {"choices":[{"index":${index},"delta":{"role":"assistant","content":${JSON.stringify(content)}},"finish_reason":null}],"x":1}\n\n`
  }
}

const ENDINGS = ['finish and [DONE]', '[DONE] only', 'finish only', 'end of body'] as const

/** One generated stream: one or two choices, each answer cut into deltas, interleaved. */
const scenario = fc.record({
  texts: fc.array(answer, { minLength: 1, maxLength: 2 }),
  ending: fc.constantFrom(...ENDINGS),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 })
}).chain(({ texts, ending, seed }) => fc.record({
  texts: fc.constant(texts),
  ending: fc.constant(ending),
  seed: fc.constant(seed),
  // Deltas are cut at code points, as hermes (Python strings) cuts them; now and then
  // every code point is a delta of its own.
  deltaCuts: fc.tuple(...texts.map((text) => {
    const points = [...text].length
    return fc.oneof({ weight: 4, arbitrary: cutsOf(points, 24) }, { weight: 1, arbitrary: fc.constant(Array.from({ length: Math.max(0, points - 1) }, (_, i) => i + 1)) })
  })),
  layouts: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 32, maxLength: 32 })
}))

/** A small deterministic PRNG, so the interleaving is part of the reproducible case. */
function random (seed: number): () => number {
  let state = seed || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 2 ** 32
  }
}

interface Built {
  texts: string[]
  /** The upstream's event stream. */
  stream: string
  /** Each choice's whole-text rewrite. */
  expected: string[]
}

function build (s: { texts: string[], ending: typeof ENDINGS[number], seed: number, deltaCuts: number[][], layouts: number[] }): Built {
  const queues = s.texts.map((text, index) => cutAt([...text], s.deltaCuts[index] ?? []).map((points) => points.join('')))
  const next = random(s.seed)
  const events: string[] = []
  let n = 0
  while (queues.some((queue) => queue.length > 0)) {
    const live = queues.map((queue, index) => ({ queue, index })).filter(({ queue }) => queue.length > 0)
    const pick = live[Math.floor(next() * live.length)] as { queue: string[], index: number }
    events.push(delta(s.layouts[n++ % s.layouts.length] ?? 0, pick.index, pick.queue.shift() as string))
  }
  if (s.ending === 'finish and [DONE]' || s.ending === 'finish only') {
    for (let index = 0; index < s.texts.length; index++) events.push(chunk({}, { index, finish: 'stop' }))
  }
  if (s.ending === 'finish and [DONE]' || s.ending === '[DONE] only') events.push(DONE)
  return { texts: s.texts, stream: events.join(''), expected: s.texts.map(whole) }
}

/**
 * Runs the bytes through the transform in the given chunks. Returns undefined when the
 * output is right, else what went wrong: every choice's text equals its whole-text rewrite,
 * and after every output event each choice's text so far is a prefix of that rewrite.
 */
function check (bytes: Uint8Array, chunks: Uint8Array[], expected: string[]): string | undefined {
  const handler = createChatCompletionsHandler(() => createRewriter({ resolve }))
  const stream = createEventStream(handler)
  const sent = expected.map(() => '')
  const take = (out: string[]): string | undefined => {
    for (const text of out) {
      for (const data of dataLines(text)) {
        if (data === '[DONE]') continue
        for (const choice of (JSON.parse(data) as { choices: Array<{ index: number, delta: { content?: string } }> }).choices) {
          if (typeof choice.delta.content !== 'string') continue
          sent[choice.index] += choice.delta.content
          if (!(expected[choice.index] as string).startsWith(sent[choice.index] as string)) {
            return `choice ${choice.index} sent ${JSON.stringify(sent[choice.index])}, which the final text ${JSON.stringify(expected[choice.index])} does not start with`
          }
        }
      }
    }
    return undefined
  }
  for (const piece of chunks) {
    const problem = take([stream.feed(piece).toString()])
    if (problem !== undefined) return problem
  }
  const problem = take([stream.end().toString()])
  if (problem !== undefined) return problem
  for (const [index, text] of expected.entries()) {
    if (sent[index] !== text) return `choice ${index} ended as ${JSON.stringify(sent[index])}, not ${JSON.stringify(text)}`
  }
  return bytes.length === 0 ? 'empty stream' : undefined
}

const encode = (text: string): Uint8Array => new TextEncoder().encode(text)

function run (built: Built, byteCuts: number[]): string | undefined {
  const bytes = encode(built.stream)
  return check(bytes, cutAt(bytes, byteCuts), built.expected)
}

t.test(`${NUM_RUNS} random streams: the output equals the whole-text rewrite, and no delta is ever taken back`, async (t) => {
  let rewritten = 0
  let twoChoices = 0
  const property = fc.property(
    scenario.map(build).chain((built) => fc.tuple(fc.constant(built), cutsOf(encode(built.stream).length, 32))),
    ([built, byteCuts]) => {
      if (built.expected.some((text) => text.includes('http://gate.test/'))) rewritten++
      if (built.expected.length === 2) twoChoices++
      return run(built, byteCuts) === undefined
    }
  )
  const started = performance.now()
  const details = fc.check(property, { numRuns: NUM_RUNS })
  const seconds = (performance.now() - started) / 1000
  const counterexample = details.counterexample?.[0]
  t.notOk(details.failed, counterexample === undefined
    ? `${details.numRuns} streams agree (${seconds.toFixed(1)} s)`
    : `${run(...counterexample) ?? ''}; answers ${JSON.stringify(counterexample[0].texts)}, stream ${JSON.stringify(counterexample[0].stream)}, byte cuts ${JSON.stringify(counterexample[1])} (seed ${details.seed}, path ${String(details.counterexamplePath)})`)
  t.equal(details.numRuns, NUM_RUNS, 'every run was made')
  t.ok(rewritten > NUM_RUNS / 4, `the generated answers exercise rewriting (${rewritten} of ${NUM_RUNS} had a rewrite)`)
  t.ok(twoChoices > NUM_RUNS / 4, `and interleaved choices (${twoChoices} of ${NUM_RUNS})`)
})
