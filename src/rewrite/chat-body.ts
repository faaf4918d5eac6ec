import { isObject } from '../json.js'

/**
 * Rewrites a non-streaming chat completion (`stream: false`): each
 * `choices[].message.content` (a string, or the text parts of an array) goes through
 * `rewrite`; every other byte of the body is kept. A body that is not a completion, or
 * in which nothing changed, is returned as it came.
 */
export function rewriteChatCompletionBody (body: string, rewrite: (text: string) => string): string {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return body
  }
  if (!isObject(parsed) || !Array.isArray(parsed.choices)) return body
  let changed = false
  for (const choice of parsed.choices) {
    if (!isObject(choice) || !isObject(choice.message)) continue
    const message = choice.message
    if (typeof message.content === 'string') {
      const text = rewrite(message.content)
      if (text !== message.content) {
        message.content = text
        changed = true
      }
    } else if (Array.isArray(message.content)) {
      for (const part of message.content) {
        if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') continue
        const text = rewrite(part.text)
        if (text !== part.text) {
          part.text = text
          changed = true
        }
      }
    }
  }
  return changed ? JSON.stringify(parsed) : body
}
