/**
 * `/v1/responses` streams in the shape hermes-agent's api_server sends them (see
 * shared/fixtures/hermes-responses-stream.sse): named events, each `data` object with
 * its `type` and `sequence_number`, text deltas batched a few words at a time, and the
 * whole text repeated in `response.output_text.done`, `response.output_item.done` and
 * `response.completed`. Python `json.dumps` separators, non-ASCII as `\uXXXX`.
 *
 * As in the chat chunks, every `data` object ends with a `"t"` field: the monotonic
 * microsecond at which the upstream wrote it. imagegate re-serializes an event only
 * when it changed it (rewritten text, shifted `sequence_number`) and keeps its other
 * fields, so the stamp reaches the client on every path.
 */
import { nowUs } from './clock.mjs'
import { pyString } from './hermes.mjs'

const RESPONSE_ID = 'resp_5a1b2c3d4e5f60718293a4b5c6d7'
const ITEM_ID = 'msg_91ab'
const PART = `"item_id": "${ITEM_ID}", "output_index": 0, "content_index": 0`

const WORDS = ['Here', ' you', ' go', ' \u2014', ' a', ' simple', ' red', ' apple', ' \ud83c\udf4e', ':', ' the', ' skin', ' is', ' glossy', ',', ' the', ' stem', ' short', '.', '\n\n']
/** Words per text delta: hermes batches deltas instead of sending one token each. */
const WORDS_PER_DELTA = 3

/** Deltas an image reference is split across. */
export const RESPONSES_IMAGE_PIECES = 4

/**
 * The text of delta `i`: a few words, and every `imageEvery` deltas a markdown image
 * whose absolute path is split across `RESPONSES_IMAGE_PIECES` deltas, the path itself
 * cut in the middle.
 */
export function responsesSource (imagePath, imageEvery) {
  const half = imagePath.length >> 1
  const pieces = ['\n\n![Simple red', ' apple on white background](', imagePath.slice(0, half), imagePath.slice(half) + ')\n\n']
  return (i) => {
    if (imageEvery > 0) {
      const k = (i % imageEvery) - (imageEvery - RESPONSES_IMAGE_PIECES)
      if (k >= 0) return pieces[k]
    }
    let text = ''
    for (let w = 0; w < WORDS_PER_DELTA; w++) text += WORDS[(i * WORDS_PER_DELTA + w) % WORDS.length]
    return text
  }
}

const event = (type, sequence, fields) =>
  `event: ${type}\ndata: {"type": "${type}", "sequence_number": ${sequence}, ${fields}, "t": ${nowUs()}}\n\n`

const message = (status, content) =>
  `{"id": "${ITEM_ID}", "type": "message", "status": "${status}", "role": "assistant", "content": ${content}}`

const outputText = (text) => `[{"type": "output_text", "text": ${pyString(text)}, "annotations": []}]`

/**
 * One answer's events, written in order through `write`: `created()` gives the first
 * two events, `delta(text)` one delta, `finish()` the three closing events with the
 * whole text. The whole text is kept here, since the closing events repeat it.
 */
export function createResponsesWriter () {
  let sequence = 0
  let text = ''
  let deltas = 0
  return {
    created () {
      return event('response.created', sequence++, `"response": {"id": "${RESPONSE_ID}", "object": "response", "status": "in_progress", "model": "hermes-agent", "output": []}`) +
        event('response.output_item.added', sequence++, `"output_index": 0, "item": ${message('in_progress', '[]')}`)
    },
    delta (piece) {
      text += piece
      deltas++
      return event('response.output_text.delta', sequence++, `${PART}, "delta": ${pyString(piece)}, "logprobs": []`)
    },
    finish () {
      const whole = pyString(text)
      const done = message('completed', outputText(text))
      return event('response.output_text.done', sequence++, `${PART}, "text": ${whole}`) +
        event('response.output_item.done', sequence++, `"output_index": 0, "item": ${done}`) +
        event('response.completed', sequence++, `"response": {"id": "${RESPONSE_ID}", "object": "response", "status": "completed", "model": "hermes-agent", "output": [${done}], "usage": {"input_tokens": 1843, "output_tokens": ${deltas}, "total_tokens": ${1843 + deltas}}}`)
    }
  }
}

/** Events per answer of `deltas` text deltas: created, item added, deltas, three closing. */
export const responsesEventCount = (deltas) => 2 + deltas + 3
