/**
 * Chat-completion chunks in the exact shape hermes-agent's api_server streams (see
 * shared/fixtures/hermes-chat-stream.sse): Python `json.dumps` separators (`", "`, `": "`)
 * and non-ASCII escaped as `\uXXXX`.
 *
 * Every chunk carries one extra top-level field, `"t"`: the monotonic microsecond at
 * which the upstream wrote it. A JSON field survives every path compared unchanged in
 * value (imagegate re-serializes a chunk only when it rewrote its content, and keeps
 * every other field), so the client can compute each event's delay the same way for all.
 */
import { nowUs } from './clock.mjs'

const ID = 'chatcmpl-3f9c1a7e5b2d4c8e9a0b1c2d3e4f5'
const CREATED = 1777026000
const HEAD = `{"id": "${ID}", "object": "chat.completion.chunk", "created": ${CREATED}, "model": "hermes-agent", "choices": [`

const WORDS = ['Here', ' you', ' go', ' \u2014', ' a', ' simple', ' red', ' apple', ' \ud83c\udf4e', ':', ' the', ' skin', ' is', ' glossy', ',', ' the', ' stem', ' short', '.', '\n\n']

/** A string as Python's `json.dumps` writes it (ensure_ascii). */
export function pyString (text) {
  return JSON.stringify(text).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

function event (choices, extra = '') {
  return `data: ${HEAD}${choices}]${extra}, "t": ${nowUs()}}\n\n`
}

export const roleEvent = () => event('{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}')

export const contentEvent = (text) => event(`{"index": 0, "delta": {"content": ${pyString(text)}}, "finish_reason": null}`)

export const finalEvent = (completionTokens) => event(
  '{"index": 0, "delta": {}, "finish_reason": "stop"}',
  `, "usage": {"prompt_tokens": 1843, "completion_tokens": ${completionTokens}, "total_tokens": ${1843 + completionTokens}}`
)

export const DONE_EVENT = 'data: [DONE]\n\n'

/** Events an image reference is split across (hermes streams it a few characters at a time). */
const IMAGE_PIECES = 6

/**
 * The content of delta `i`: words, and every `imageEvery` deltas a markdown image whose
 * path (absolute, into the cache dir) is split across `IMAGE_PIECES` events.
 */
export function contentSource (imagePath, imageEvery) {
  const half = imagePath.length >> 1
  const pieces = ['\n\n![', 'Simple red', ' apple](', imagePath.slice(0, half), imagePath.slice(half), ')\n\n']
  return (i) => {
    if (imageEvery > 0) {
      const k = (i % imageEvery) - (imageEvery - IMAGE_PIECES)
      if (k >= 0) return pieces[k]
    }
    return WORDS[i % WORDS.length]
  }
}
