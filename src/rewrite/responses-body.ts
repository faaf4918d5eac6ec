import { isObject } from '../json.js'
import { rewriteResponseObject } from '../sse/responses.js'

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
