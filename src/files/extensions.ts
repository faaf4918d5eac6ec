/**
 * Which file types imagegate hands to the browser. The lists are closed on purpose:
 * a cache dir may hold anything the agent wrote (scripts, HTML, SVG with embedded
 * script), and serving one of those from imagegate's origin would let it run there.
 * SVG is left out for exactly that reason. Entries are lowercase, without the dot.
 */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'bmp'
])

/** Only with `--allow-svg`: SVG can carry script, so it is served sandboxed. */
export const SVG_EXTENSION = 'svg'

/** Audio and video, delivered only where the caller accepts media (`MEDIA:` tags). */
export const MEDIA_EXTENSIONS: ReadonlySet<string> = new Set([
  'mp3', 'ogg', 'opus', 'wav', 'm4a', 'mp4', 'webm', 'mov'
])

/**
 * Documents the agent shows with `MEDIA:` (reports, tables, archives). They are always
 * sent as downloads (`Content-Disposition: attachment`), never shown inline, so even a
 * document a browser could render cannot run anything on imagegate's origin. HTML,
 * scripts and other active types are not here on purpose.
 */
export const DOCUMENT_EXTENSIONS: ReadonlySet<string> = new Set([
  'pdf', 'txt', 'md', 'csv', 'json', 'docx', 'xlsx', 'pptx', 'zip'
])

/** Lowercased extension of a file name without the dot, '' when there is none. */
export function extensionOf (fileName: string): string {
  const dot = fileName.lastIndexOf('.')
  // A leading dot starts a dotfile name, not an extension (`.png` has none).
  return dot <= 0 ? '' : fileName.slice(dot + 1).toLowerCase()
}

/** True for an image extension (any case, no dot). */
export function isImageExtension (extension: string): boolean {
  return IMAGE_EXTENSIONS.has(extension.toLowerCase())
}

/** True for a document extension (any case, no dot). */
export function isDocumentExtension (extension: string): boolean {
  return DOCUMENT_EXTENSIONS.has(extension.toLowerCase())
}

/** True for an audio or video extension (any case, no dot); images are not media here. */
export function isMediaExtension (extension: string): boolean {
  return MEDIA_EXTENSIONS.has(extension.toLowerCase())
}
