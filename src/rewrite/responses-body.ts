import { isObject } from '../json.js'
import type { JsonObject } from '../json.js'

/**
 * Rewrites a non-streaming Responses API answer (`output[].content[].text`,
 * `output_text`); anything else, or a body in which nothing changed, is returned as it
 * came.
 */
export function rewriteResponsesBody (body: string, rewrite: (text: string) => string): string {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return body
  }
  if (!isObject(parsed)) return body
  return rewriteResponseObject(parsed, rewrite) ? JSON.stringify(parsed) : body
}

/**
 * Rewrites text in a Responses API body: `output[].content[].text` of type `output_text`,
 * and the `output_text` convenience field. Returns true when anything changed.
 */
export function rewriteResponseObject (response: JsonObject, rewrite: (text: string) => string): boolean {
  let changed = false
  if (typeof response.output_text === 'string') {
    const text = rewrite(response.output_text)
    if (text !== response.output_text) {
      response.output_text = text
      changed = true
    }
  }
  if (Array.isArray(response.output)) {
    for (const item of response.output) if (isObject(item) && rewriteItem(item, rewrite)) changed = true
  }
  return changed
}

export function rewriteItem (item: JsonObject, rewrite: (text: string) => string): boolean {
  if (!Array.isArray(item.content)) return false
  let changed = false
  for (const part of item.content) if (isObject(part) && rewritePart(part, rewrite)) changed = true
  return changed
}

export function rewritePart (part: JsonObject, rewrite: (text: string) => string): boolean {
  if (part.type !== 'output_text' || typeof part.text !== 'string') return false
  const text = rewrite(part.text)
  if (text === part.text) return false
  part.text = text
  return true
}
