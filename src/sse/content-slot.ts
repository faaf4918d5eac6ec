import type { RawEvent } from './event-stream.js'
import { CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET } from '../chars.js'
import {
  expect, expectByte, indexEnd, isKeyStart, objectOfDataLine, readIndex, skipBlanks, stringEnd
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
}

const DATA = Buffer.from('data:')
export const CHOICES = Buffer.from('"choices"')
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
  return true
}
