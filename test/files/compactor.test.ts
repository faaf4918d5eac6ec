import fs from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import t from 'tap'
import type { Test } from 'tap'
import { LATER, avifQuality, createCompactor } from '../../src/files/compactor.js'
import type { Rendering } from '../../src/files/compactor.js'
import type { CompactorOptions } from '../../src/files/compactor.js'
import { waitFor } from '../fixtures/http.js'
import { picturePng } from '../fixtures/picture.js'
import { animatedGif, checkerboardPng } from '../fixtures/pictures-small.js'

const PICTURE = await picturePng()

/** The rendering's path; fails the test when there is none. */
function pathOf (rendering: Rendering | typeof LATER | undefined): string {
  if (rendering === undefined || rendering === LATER) throw new Error(`no rendering: ${String(rendering)}`)
  return rendering.path
}
const WIDE = await picturePng(1600, 900)

interface Setup { dir: string, file: (name: string) => string, failures: string[], compactor: ReturnType<typeof createCompactor> }

async function setup (t: Test, options: Partial<CompactorOptions> = {}): Promise<Setup> {
  const dir = t.testdir({
    cache: {
      'picture.png': PICTURE,
      'wide.png': WIDE,
      'checker.png': await checkerboardPng(),
      'animated.gif': await animatedGif(),
      'corrupt.png': Buffer.from('\x89PNG\r\n\x1a\nthis is not an image at all')
    }
  })
  const failures: string[] = []
  const compactor = createCompactor({
    dir: path.join(dir, 'compact'),
    maxTotalBytes: 64 * 1024 * 1024,
    quality: 80,
    maxWidth: 2048,
    onFailure: ({ realPath }) => { failures.push(path.basename(realPath)) },
    ...options
  })
  t.teardown(() => compactor.close())
  return { dir, file: (name) => path.join(dir, 'cache', name), failures, compactor }
}

t.test('a WebP rendering, smaller, the same size in pixels, encoded once', async (t) => {
  const { dir, file, compactor } = await setup(t)
  const rendering = await compactor.rendering(file('picture.png'), 'webp')
  t.ok(rendering, 'a rendering')
  t.equal(rendering !== LATER && rendering?.root, path.join(dir, 'compact'), 'kept in the compact folder')
  const bytes = fs.readFileSync(pathOf(rendering))
  const meta = await sharp(bytes).metadata()
  t.equal(meta.format, 'webp', 'it is WebP')
  t.same([meta.width, meta.height], [1024, 1024], 'at the picture\'s size')
  t.ok(bytes.length * 5 < PICTURE.length, `at least 5× smaller (${PICTURE.length} → ${bytes.length} bytes)`)
  const mtime = fs.statSync(pathOf(rendering)).mtimeMs
  const again = await compactor.rendering(file('picture.png'), 'webp')
  t.same(again, rendering, 'asked again: the same file')
  t.equal(fs.statSync(pathOf(again)).mtimeMs, mtime, 'not encoded again')
  t.same(await compactor.rendering(file('picture.png'), 'webp', { encode: false }), rendering, 'found without encoding too')
})

t.test('concurrent requests for one picture share one encode', async (t) => {
  const { dir, file, compactor } = await setup(t)
  const all = await Promise.all([1, 2, 3].map(() => compactor.rendering(file('picture.png'), 'webp')))
  t.ok(pathOf(all[0]), 'a rendering')
  t.same(all, [all[0], all[0], all[0]], 'the same one for everyone')
  t.equal(fs.readdirSync(path.join(dir, 'compact')).length, 1, 'one file')
})

t.test('wider pictures are scaled down to the maximum width, keeping the aspect ratio', async (t) => {
  const { file, compactor } = await setup(t, { maxWidth: 800 })
  const rendering = await compactor.rendering(file('wide.png'), 'webp')
  const meta = await sharp(fs.readFileSync(pathOf(rendering))).metadata()
  t.same([meta.width, meta.height], [800, 450], '1600×900 → 800×450')
  const narrow = await compactor.rendering(file('picture.png'), 'webp')
  t.same((await sharp(fs.readFileSync(pathOf(narrow))).metadata()).width, 800, 'a square one too')
})

t.test('with no maximum width, nothing is scaled', async (t) => {
  const { file, compactor } = await setup(t, { maxWidth: 0 })
  const rendering = await compactor.rendering(file('wide.png'), 'webp')
  t.equal((await sharp(fs.readFileSync(pathOf(rendering))).metadata()).width, 1600, 'full width')
})

t.test('AVIF, at a quality that looks like the WebP\'s and smaller than it', async (t) => {
  const { file, compactor } = await setup(t)
  const rendering = await compactor.rendering(file('picture.png'), 'avif')
  t.equal(path.extname(pathOf(rendering)), '.avif', 'an .avif file')
  const bytes = fs.readFileSync(pathOf(rendering))
  t.equal((await sharp(bytes).metadata()).format, 'heif', 'in the HEIF container AVIF uses')
  const webp = await compactor.rendering(file('picture.png'), 'webp')
  t.ok(bytes.length < fs.statSync(pathOf(webp)).size, 'smaller than the WebP')
  t.same([avifQuality(80), avifQuality(100), avifQuality(1)], [50, 63, 1], 'WebP 80 is AVIF 50, sharp\'s two defaults; never below 1')
})

t.test('the original when the rendering is not smaller, animated, or broken; decided once', async (t) => {
  const { dir, file, failures, compactor } = await setup(t)
  t.equal(await compactor.rendering(file('checker.png'), 'webp'), undefined, 'a tiny palette PNG beats lossy WebP: the original')
  t.equal(await compactor.rendering(file('animated.gif'), 'webp'), undefined, 'an animated GIF: the original, all its frames')
  t.equal(await compactor.rendering(file('corrupt.png'), 'webp'), undefined, 'a file that does not decode: the original')
  t.equal(await compactor.rendering(file('corrupt.png'), 'webp'), undefined, 'asked again: still the original')
  t.same(failures, ['corrupt.png'], 'the failure is reported once')
  t.same(fs.readdirSync(path.join(dir, 'compact')), [], 'nothing was stored')
  t.equal(await compactor.rendering(file('missing.png'), 'webp'), undefined, 'a file gone from disk: nothing to render')
  // A new version of the file is a new decision.
  fs.copyFileSync(file('picture.png'), file('corrupt.png'))
  t.ok(await compactor.rendering(file('corrupt.png'), 'webp'), 'the file replaced by a picture gets a rendering')
})

t.test('busy: past the queue the original is sent at once; a slow encode is not waited for', async (t) => {
  const { file, compactor } = await setup(t, { concurrency: 1, queueLimit: 0, waitMs: 5000 })
  t.equal(compactor.encodes, 0, 'nothing encoding yet')
  const first = compactor.rendering(file('picture.png'), 'webp')
  // The first request looks at its file before it takes the encoder: wait until it has.
  while (compactor.encodes === 0) await new Promise((resolve) => setImmediate(resolve))
  const second = compactor.rendering(file('wide.png'), 'webp')
  t.equal(await Promise.race([second, first.then(() => 'the first encode ended first')]), LATER, 'a second picture while one is encoding: not now, without waiting for the encode')
  t.ok(await first, 'the first one still gets its rendering')
  t.equal(compactor.encodes, 0, 'and the encoder is free again')
  t.ok(await compactor.rendering(file('wide.png'), 'webp'), 'once free, the second is encoded')
})

t.test('past the running encode, requests queue and are served in turn', async (t) => {
  const { dir, file, compactor } = await setup(t, { concurrency: 1, queueLimit: 2 })
  const first = compactor.rendering(file('wide.png'), 'webp')
  const second = compactor.rendering(file('picture.png'), 'webp')
  // Both are past their stat() once the first encode has read its file.
  await waitFor(() => compactor.encodes === 2, 'both encodes asked for')
  const renderings = (): string[] => fs.readdirSync(path.join(dir, 'compact')).filter((name) => name.endsWith('.webp'))
  const done = await first
  // The second encode starts when the first ends, and reads its file before anything
  // else: it cannot have written its rendering by the time the first one's caller runs.
  t.same(renderings(), [path.basename(pathOf(done))], 'when the first is done, only its rendering exists')
  await waitFor(() => compactor.encodes === 1, 'the second encode, alone')
  t.not(pathOf(await second), pathOf(done), 'then the second gets its own')
  t.equal(compactor.encodes, 0, 'nothing left running')
})

t.test('a rendering larger than the folder\'s bound is not kept: the original', async (t) => {
  const { dir, file, compactor } = await setup(t, { maxTotalBytes: 1000 })
  t.equal(await compactor.rendering(file('picture.png'), 'webp'), undefined, 'the original')
  t.same(fs.readdirSync(path.join(dir, 'compact')), [], 'nothing stored')
})

/** The sizes of the renderings `setup`'s pictures get, encoded in a folder of their own. */
async function renderingSizes (t: Test): Promise<{ picture: number, wide: number, avif: number }> {
  const { file, compactor } = await setup(t)
  const size = async (name: string, format: 'webp' | 'avif'): Promise<number> =>
    fs.statSync(pathOf(await compactor.rendering(file(name), format))).size
  return { picture: await size('picture.png', 'webp'), wide: await size('wide.png', 'webp'), avif: await size('picture.png', 'avif') }
}

t.test('the folder of renderings is bounded: the least recently used goes, and is encoded again when asked for', async (t) => {
  const sizes = await renderingSizes(t)
  const { file, compactor } = await setup(t, { maxTotalBytes: sizes.picture + sizes.wide + sizes.avif - 1 })
  const picture = pathOf(await compactor.rendering(file('picture.png'), 'webp'))
  t.equal(fs.statSync(picture).mode & 0o777, 0o600, 'a rendering is readable by its owner only')
  const wide = pathOf(await compactor.rendering(file('wide.png'), 'webp'))
  t.equal(pathOf(await compactor.rendering(file('picture.png'), 'webp', { encode: false })), picture, 'the first is used again')
  const avif = pathOf(await compactor.rendering(file('picture.png'), 'avif'))
  t.notOk(fs.existsSync(wide), 'past the bound the least recently used is removed from disk')
  t.ok(fs.existsSync(picture) && fs.existsSync(avif), 'the one used again and the newest stay')
  t.equal(await compactor.rendering(file('wide.png'), 'webp', { encode: false }), LATER, 'the removed one is no longer found')
  t.equal(pathOf(await compactor.rendering(file('wide.png'), 'webp')), wide, 'asked for, it is encoded again')
  t.notOk(fs.existsSync(picture), 'and the least recently used makes room for it')
})

t.test('a rendering removed by hand is encoded again', async (t) => {
  const { file, compactor } = await setup(t)
  const rendering = pathOf(await compactor.rendering(file('picture.png'), 'webp'))
  fs.unlinkSync(rendering)
  t.equal(await compactor.rendering(file('picture.png'), 'webp', { encode: false }), LATER, 'gone from disk: not found')
  t.equal(pathOf(await compactor.rendering(file('picture.png'), 'webp')), rendering, 'encoded again under its name')
  t.ok(fs.existsSync(rendering), 'and on disk')
})

t.test('across restarts the bound holds, oldest renderings out first; what is not a rendering is left alone', async (t) => {
  const sizes = await renderingSizes(t)
  const { dir, file, compactor } = await setup(t)
  const picture = pathOf(await compactor.rendering(file('picture.png'), 'webp'))
  const wide = pathOf(await compactor.rendering(file('wide.png'), 'webp'))
  await compactor.close()
  const compact = path.join(dir, 'compact')
  const old = new Date(Date.now() - 60_000)
  fs.utimesSync(wide, old, old)
  // Named like no rendering, or a folder named like one: neither counted nor removed.
  const foreign = ['notes.txt', `${'0'.repeat(32)}.png`, `${'1'.repeat(32)}.webp`]
  fs.writeFileSync(path.join(compact, foreign[0] as string), 'not the compactor\'s')
  fs.writeFileSync(path.join(compact, foreign[1] as string), Buffer.alloc(sizes.picture))
  fs.mkdirSync(path.join(compact, foreign[2] as string))
  const restarted = createCompactor({ dir: compact, maxTotalBytes: sizes.picture, quality: 80, maxWidth: 2048 })
  t.teardown(() => restarted.close())
  t.notOk(fs.existsSync(wide), 'trimmed to the bound at start: the oldest is removed')
  t.equal(pathOf(await restarted.rendering(file('picture.png'), 'webp', { encode: false })), picture, 'the newer is found without encoding')
  t.same(fs.readdirSync(compact).sort(), [...foreign, path.basename(picture)].sort(), 'the rest is left alone')
})

t.test('a rendering that cannot be written: the original, and no temporary file left', async (t) => {
  const { dir, file, compactor } = await setup(t)
  const rendering = pathOf(await compactor.rendering(file('picture.png'), 'webp'))
  await compactor.close()
  fs.unlinkSync(rendering)
  // A folder where the rendering goes makes its rename fail.
  fs.mkdirSync(rendering)
  fs.writeFileSync(path.join(rendering, 'x'), 'x')
  const failures: string[] = []
  const restarted = createCompactor({ dir: path.join(dir, 'compact'), maxTotalBytes: 64 * 1024 * 1024, quality: 80, maxWidth: 2048, onFailure: ({ realPath }) => { failures.push(realPath) } })
  t.teardown(() => restarted.close())
  t.equal(await restarted.rendering(file('picture.png'), 'webp'), undefined, 'the original')
  t.same(failures, [], 'not an encoding failure')
  t.same(fs.readdirSync(path.join(dir, 'compact')), [path.basename(rendering)], 'no temporary file is left')
})

t.test('remembered decisions are bounded, the oldest forgotten first', async (t) => {
  const { file, failures, compactor } = await setup(t, { maxDecisions: 1 })
  fs.copyFileSync(file('corrupt.png'), file('corrupt-2.png'))
  await compactor.rendering(file('corrupt.png'), 'webp')
  await compactor.rendering(file('corrupt-2.png'), 'webp')
  await compactor.rendering(file('corrupt-2.png'), 'webp')
  t.same(failures, ['corrupt.png', 'corrupt-2.png'], 'the newest decision is kept')
  await compactor.rendering(file('corrupt.png'), 'webp')
  t.same(failures, ['corrupt.png', 'corrupt-2.png', 'corrupt.png'], 'the forgotten one is tried again')
})

t.test('a request waits at most waitMs; the encode goes on and is kept', async (t) => {
  const { file, compactor } = await setup(t, { waitMs: 1 })
  t.equal(await compactor.rendering(file('picture.png'), 'webp'), LATER, 'not ready in 1 ms: later')
  t.equal(await compactor.rendering(file('picture.png'), 'webp', { encode: false }), LATER, 'HEAD does not wait or encode')
  await compactor.close()
  t.ok(await compactor.rendering(file('picture.png'), 'webp', { encode: false }), 'after the encode finished, the rendering is there')
})

t.test('renderings are kept across restarts', async (t) => {
  const { dir, file, compactor } = await setup(t)
  const first = await compactor.rendering(file('picture.png'), 'webp')
  await compactor.close()
  const again = createCompactor({ dir: path.join(dir, 'compact'), maxTotalBytes: 64 * 1024 * 1024, quality: 80, maxWidth: 2048 })
  t.same(await again.rendering(file('picture.png'), 'webp', { encode: false }), first, 'found by a new compactor without encoding')
  const other = await again.rendering(file('picture.png'), 'webp', { encode: false })
  t.ok(other, 'still there')
  const lower = createCompactor({ dir: path.join(dir, 'compact'), maxTotalBytes: 64 * 1024 * 1024, quality: 50, maxWidth: 2048 })
  t.equal(await lower.rendering(file('picture.png'), 'webp', { encode: false }), LATER, 'another quality is another rendering, not made yet')
})
