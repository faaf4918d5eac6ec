import type { RawEvent } from './event-stream.js'
import { createFinder } from './raw-json.js'
import { CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET } from '../chars.js'
import {
  bytesAt, expect, expectByte, indexEnd, isKeyStart, objectOfDataLine, readIndex, skipBlanks, stringEnd
} from './raw-bytes.js'

/**
 * Finds, on an event's raw bytes, the one answer text of the common chat completions
 * content chunk: a one-line `data:` event whose `choices` holds one choice,
 * `{"index": n, "delta": {"content": "…"}, ["logprobs": null,] "finish_reason": null}`,
 * in OpenAI's and hermes' field order, with any spacing. Nothing is decoded: the chunk
 * is matched byte by byte around a `"choices"` key found by a native search, so the
 * caller decodes only the text itself. Any other shape is left to the parser.
 */

/** Where the text is: `buf[from, to)` is its JSON string literal, quotes included. */
export interface ContentSlot {
  index: number
  from: number
  to: number
  /** Just past the `]` that closes the choices list. */
  listEnd: number
}

const DATA = Buffer.from('data:')
const CHOICES = Buffer.from('"choices"')
const INDEX = Buffer.from('"index"')
const DELTA = Buffer.from('"delta"')
const CONTENT = Buffer.from('"content"')
const LOGPROBS = Buffer.from('"logprobs"')
const FINISH = Buffer.from('"finish_reason"')
const NULL = Buffer.from('null')

/**
 * Fills `slot` for the chunk `event` when it has the common shape; `choices` is where its
 * `"choices"` key starts. The event is one line (`event.lines === 1`), so everything
 * matched is inside its data.
 */
export function findContentSlot (event: RawEvent, choices: number, slot: ContentSlot): boolean {
  const { buf, start, end } = event
  if (event.lines !== 1 || objectOfDataLine(buf, start, end, DATA) === -1 || !isKeyStart(buf, choices, start)) return false
  let at = expectByte(buf, choices + CHOICES.length, end, COLON)
  at = expectByte(buf, at, end, OPEN_BRACKET)
  at = expectByte(buf, at, end, OPEN_BRACE)
  at = expect(buf, at, end, INDEX)
  const indexFrom = expectByte(buf, at, end, COLON)
  const indexTo = indexEnd(buf, indexFrom, end)
  at = expectByte(buf, indexTo, end, COMMA)
  at = expect(buf, at, end, DELTA)
  at = expectByte(buf, at, end, COLON)
  at = expectByte(buf, at, end, OPEN_BRACE)
  at = expect(buf, at, end, CONTENT)
  at = expectByte(buf, at, end, COLON)
  const from = at === -1 ? -1 : skipBlanks(buf, at, end)
  const to = stringEnd(buf, from, end)
  at = expectByte(buf, to, end, CLOSE_BRACE)
  at = expectByte(buf, at, end, COMMA)
  const logprobs = expect(buf, at, end, LOGPROBS)
  if (logprobs !== -1) at = expectByte(buf, expect(buf, expectByte(buf, logprobs, end, COLON), end, NULL), end, COMMA)
  at = expect(buf, at, end, FINISH)
  at = expectByte(buf, at, end, COLON)
  at = expect(buf, at, end, NULL)
  at = expectByte(buf, at, end, CLOSE_BRACE)
  at = expectByte(buf, at, end, CLOSE_BRACKET)
  if (at === -1) return false
  slot.index = readIndex(buf, indexFrom, indexTo)
  slot.from = from
  slot.to = to
  slot.listEnd = at
  return true
}

/** The longest shape remembered, in bytes: the common ones are 40 to 80. */
const MAX_SHAPE = 256

/**
 * A finder of content slots for one stream. The chunks of one answer have one shape:
 * the same fields before `"choices"` (id, object, created, model), the same bytes from
 * `"choices"` to the text's opening quote, and from its closing quote to the end of the
 * choices list. Once a chunk matched field by field, the next is first compared with its
 * bytes at the same place: two short byte comparisons instead of a walk over each token.
 */
export function createContentSlotFinder (): (event: RawEvent, slot: ContentSlot) => boolean {
  const findChoices = createFinder('"choices"')
  const findContent = createFinder('"content"')
  let offset = -1
  let index = 0
  const prefix = Buffer.alloc(MAX_SHAPE)
  let prefixLength = 0
  const suffix = Buffer.alloc(MAX_SHAPE)
  let suffixLength = 0

  function sameShape (event: RawEvent, slot: ContentSlot): boolean {
    const { buf, start, end } = event
    const at = start + offset
    if (!bytesAt(buf, at, prefix, prefixLength) || objectOfDataLine(buf, start, end, DATA) === -1 || !isKeyStart(buf, at, start)) return false
    const from = at + prefixLength - 1
    const to = stringEnd(buf, from, end)
    if (to === -1 || !bytesAt(buf, to, suffix, suffixLength)) return false
    slot.index = index
    slot.from = from
    slot.to = to
    slot.listEnd = to + suffixLength
    return true
  }

  return (event, slot) => {
    if (event.lines !== 1) return false
    if (offset !== -1 && sameShape(event, slot)) return true
    // Most events of another shape carry no text at all (reasoning, tool calls): one
    // search per read rules them out before the walk over their fields.
    if (findContent(event) === -1) return false
    const choices = findChoices(event)
    if (choices === -1 || !findContentSlot(event, choices, slot)) return false
    const { buf, start } = event
    if (slot.from + 1 - choices <= MAX_SHAPE && slot.listEnd - slot.to <= MAX_SHAPE) {
      offset = choices - start
      index = slot.index
      prefixLength = buf.copy(prefix, 0, choices, slot.from + 1)
      suffixLength = buf.copy(suffix, 0, slot.to, slot.listEnd)
    }
    return true
  }
}
