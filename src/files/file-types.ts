/**
 * Every file type imagegate delivers, in one table: which extensions name it, its MIME
 * type, how it is shown, how its bytes are recognised and what may be done with it.
 * The allowlists, the inline `data:` types, the magic-byte check and the compactable
 * formats are all read from here.
 *
 * The table is closed on purpose: a cache dir may hold anything the agent wrote
 * (scripts, HTML, SVG with embedded script), and serving one of those from imagegate's
 * origin would let it run there. HTML, scripts and other active types are not listed.
 */

/** Images are shown, audio and video played, documents downloaded. */
export type FileKind = 'image' | 'media' | 'document'

/** One deliverable file type. */
export interface FileType {
  /** Lowercase, without the dot; the first is the one imagegate writes (`jpg`, not `jpeg`). */
  readonly extensions: readonly string[]
  /** The type as @fastify/send names it for these extensions (the served `Content-Type`). */
  readonly mime: string
  readonly kind: FileKind
  /**
   * Travels as a `data:` URI both ways: sent inline in `data-uri` mode, and stored when
   * the upstream sends one. Such a type needs `magic`: a stored file must be what its
   * URI claims.
   */
  readonly inline?: true
  /** Recognises the type by its first bytes. */
  readonly magic?: (bytes: Uint8Array) => boolean
  /** Re-encoded to WebP or AVIF with `--compact-images`. */
  readonly compactable?: true
  /** Delivered only with `--allow-svg`: SVG can carry script, so it is served sandboxed. */
  readonly optIn?: true
}

/** `bytes` holds `expected` (bytes, or ASCII text) at `offset`. */
function holds (bytes: Uint8Array, offset: number, expected: string | readonly number[]): boolean {
  const codes = typeof expected === 'string' ? [...expected].map((c) => c.charCodeAt(0)) : expected
  return codes.every((code, i) => bytes[offset + i] === code)
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff]
// The BMP file header is 14 bytes and the smallest info header 12: anything shorter
// that starts with `BM` is text, not a picture.
const BMP_MIN_BYTES = 26

/**
 * The table. Compactable: still pictures in formats much larger than WebP. WebP and
 * AVIF are compact already, SVG is text (and served sandboxed as it is), BMP is not
 * read by libvips; an animated GIF is found out only when decoding and then sent as it is.
 */
export const FILE_TYPES: readonly FileType[] = [
  { extensions: ['png'], mime: 'image/png', kind: 'image', inline: true, compactable: true, magic: (b) => holds(b, 0, PNG_SIGNATURE) },
  { extensions: ['jpg', 'jpeg'], mime: 'image/jpeg', kind: 'image', inline: true, compactable: true, magic: (b) => holds(b, 0, JPEG_SIGNATURE) },
  { extensions: ['gif'], mime: 'image/gif', kind: 'image', inline: true, compactable: true, magic: (b) => holds(b, 0, 'GIF87a') || holds(b, 0, 'GIF89a') },
  { extensions: ['webp'], mime: 'image/webp', kind: 'image', inline: true, magic: (b) => holds(b, 0, 'RIFF') && holds(b, 8, 'WEBP') },
  { extensions: ['avif'], mime: 'image/avif', kind: 'image', inline: true, magic: (b) => holds(b, 4, 'ftypavif') || holds(b, 4, 'ftypavis') },
  { extensions: ['bmp'], mime: 'image/bmp', kind: 'image', inline: true, magic: (b) => holds(b, 0, 'BM') && b.length >= BMP_MIN_BYTES },
  { extensions: ['svg'], mime: 'image/svg+xml', kind: 'image', optIn: true },
  // Audio and video, delivered only where the caller accepts media (`MEDIA:` tags).
  { extensions: ['mp3'], mime: 'audio/mpeg', kind: 'media' },
  { extensions: ['ogg', 'opus'], mime: 'audio/ogg', kind: 'media' },
  { extensions: ['wav'], mime: 'audio/wav', kind: 'media' },
  { extensions: ['m4a'], mime: 'audio/mp4', kind: 'media' },
  { extensions: ['mp4'], mime: 'video/mp4', kind: 'media' },
  { extensions: ['webm'], mime: 'video/webm', kind: 'media' },
  { extensions: ['mov'], mime: 'video/quicktime', kind: 'media' },
  // Documents the agent shows with `MEDIA:`. They are always sent as downloads
  // (`Content-Disposition: attachment`), never shown inline, so even a document a
  // browser could render cannot run anything on imagegate's origin.
  { extensions: ['pdf'], mime: 'application/pdf', kind: 'document' },
  { extensions: ['txt'], mime: 'text/plain', kind: 'document' },
  { extensions: ['md'], mime: 'text/markdown', kind: 'document' },
  { extensions: ['csv'], mime: 'text/csv', kind: 'document' },
  { extensions: ['json'], mime: 'application/json', kind: 'document' },
  { extensions: ['docx'], mime: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', kind: 'document' },
  { extensions: ['xlsx'], mime: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', kind: 'document' },
  { extensions: ['pptx'], mime: 'application/vnd.openxmlformats-officedocument.presentationml.presentation', kind: 'document' },
  { extensions: ['zip'], mime: 'application/zip', kind: 'document' }
]

const BY_EXTENSION: ReadonlyMap<string, FileType> = new Map(FILE_TYPES.flatMap((type) => type.extensions.map((extension) => [extension, type])))

const extensionsWhere = (keep: (type: FileType) => boolean): ReadonlySet<string> =>
  new Set(FILE_TYPES.filter(keep).flatMap((type) => type.extensions))

/** Image extensions delivered by default (SVG only with `--allow-svg`). */
export const IMAGE_EXTENSIONS = extensionsWhere((type) => type.kind === 'image' && type.optIn === undefined)
/** Audio and video extensions. */
export const MEDIA_EXTENSIONS = extensionsWhere((type) => type.kind === 'media')
/** Document extensions. */
export const DOCUMENT_EXTENSIONS = extensionsWhere((type) => type.kind === 'document')
/** Image extensions re-encoded with `--compact-images`. */
export const COMPACTABLE_EXTENSIONS = extensionsWhere((type) => type.compactable === true)
/** Only with `--allow-svg`. */
export const SVG_EXTENSION = 'svg'

/**
 * The subtypes an inline image may name after `data:image/`, each with the MIME type it
 * is stored as: the canonical subtype and every extension (`data:image/jpg` is common).
 */
export const DATA_IMAGE_SUBTYPES: ReadonlyMap<string, string> = new Map(
  FILE_TYPES.filter((type) => type.inline === true).flatMap((type) =>
    [...new Set([type.mime.slice('image/'.length), ...type.extensions])].map((subtype) => [subtype, type.mime]))
)

/** Lowercased extension of a file name without the dot, '' when there is none. */
export function extensionOf (fileName: string): string {
  const dot = fileName.lastIndexOf('.')
  // A leading dot starts a dotfile name, not an extension (`.png` has none).
  return dot <= 0 ? '' : fileName.slice(dot + 1).toLowerCase()
}

/** True for an image extension (any case, no dot); SVG is not one by default. */
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

/** The MIME type a file with this extension is sent inline as, or undefined when it never is. */
export function inlineType (extension: string): string | undefined {
  const type = BY_EXTENSION.get(extension.toLowerCase())
  return type?.inline === true ? type.mime : undefined
}

/**
 * The type of an inline image by its first bytes. An inline image is stored only when
 * the bytes are what its `data:image/…` type claims: a declared PNG that is really HTML
 * or a script is not served from imagegate's origin.
 */
export function sniffImageType (bytes: Uint8Array): string | undefined {
  return FILE_TYPES.find((type) => type.magic !== undefined && type.magic(bytes))?.mime
}

/** The extension a stored file of an inline MIME type is written with. */
export function extensionFor (mime: string): string {
  const type = FILE_TYPES.find((candidate) => candidate.mime === mime)
  if (type === undefined) throw new TypeError(`extensionFor: ${JSON.stringify(mime)} is not a type in FILE_TYPES`)
  return type.extensions[0] as string
}

/**
 * Length of the base64 text (RFC 4648, padded) of `bytes` bytes: four characters for
 * every three bytes or part of them. No shorter encoding of that many bytes exists
 * (unpadded text is at most two characters shorter), so base64 text longer than
 * `base64Length(n)` never decodes to n bytes or fewer. Inline images are captured
 * without whitespace (the capture stops at the first character outside the alphabet),
 * so line breaks never count here.
 */
export function base64Length (bytes: number): number {
  return Math.ceil(bytes / 3) * 4
}
