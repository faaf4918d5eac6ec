/**
 * `Content-Disposition: attachment` for documents, with the file name in both forms of
 * RFC 6266: a plain ASCII `filename` for old clients and `filename*` (RFC 8187) with the
 * exact UTF-8 name. The name comes from disk and may hold anything a file name can:
 * quotes, backslashes, semicolons or bytes that would split the header are never
 * written as they are.
 */

// Printable ASCII without `"` and `\`, which would end or escape the quoted string.
const NOT_PLAIN = /[^\x20-\x21\x23-\x5b\x5d-\x7e]/g
// RFC 8187 attr-char: encodeURIComponent also leaves `'()*` alone, which it does not allow.
const NOT_ATTR_CHAR = /['()*]/g

/** The header value that makes the browser download the file under `fileName`. */
export function attachmentDisposition (fileName: string): string {
  const plain = fileName.replace(NOT_PLAIN, '_')
  const exact = encodeURIComponent(fileName).replace(NOT_ATTR_CHAR, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  return `attachment; filename="${plain}"; filename*=UTF-8''${exact}`
}
