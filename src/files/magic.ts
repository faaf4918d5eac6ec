/**
 * Image types by their first bytes. An inline image is stored only when the bytes are
 * what its `data:image/…` type claims: a declared PNG that is really HTML or a script is
 * not served from imagegate's origin.
 */
export function sniffImageType (bytes: Uint8Array): string | undefined {
  const at = (offset: number, ...expected: number[]): boolean => expected.every((byte, i) => bytes[offset + i] === byte)
  const ascii = (offset: number, text: string): boolean => at(offset, ...[...text].map((c) => c.charCodeAt(0)))
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png'
  if (at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg'
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'image/gif'
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'image/webp'
  if (ascii(4, 'ftypavif') || ascii(4, 'ftypavis')) return 'image/avif'
  if (ascii(0, 'BM') && bytes.length >= 26) return 'image/bmp'
  return undefined
}

/** File extension for a sniffed type. */
export function extensionFor (mime: string): string {
  return mime === 'image/jpeg' ? 'jpg' : mime.slice('image/'.length)
}
