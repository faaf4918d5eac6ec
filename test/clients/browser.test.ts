// The picture appears in Open WebUI: a real Chromium renders the answer the way Open WebUI
// does (marked 9.1, its image source rule, a page on its own origin whose server reads
// the stream), once straight from the agent and once through imagegate.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { BrowserContext } from 'playwright-core'
import { pngSize, solidPng } from '../fixtures/png.js'
import { picturePng } from '../fixtures/picture.js'
import {
  ANSWER, BROWSER_TIMEOUT_MS, IMAGE_NAME, IMAGE_PATH, captureComparison, chatUrl, launchBrowser, renderChat, startScene
} from '../fixtures/browser/scene.js'
import type { Scene } from '../fixtures/browser/scene.js'

const WIDTH = 64
const HEIGHT = 48
const IMAGE = solidPng(WIDTH, HEIGHT)

// One browser launch and four scenes; generous for a busy 2-core machine.
t.setTimeout(120_000)

// One browser for the whole file; every test gets its own context (cache, cookies).
const browser = await launchBrowser()
t.teardown(() => browser.close())

async function setup (t: Test, mode: 'link' | 'data-uri' = 'link'): Promise<Scene & { context: BrowserContext, dir: string }> {
  // One testdir per test: a second `t.testdir()` call would empty the first.
  const dir = t.testdir({ cache: { [IMAGE_NAME]: IMAGE } })
  const scene = await startScene(t, { cacheDir: path.join(dir, 'cache'), image: IMAGE, mode })
  const context = await browser.newContext({ viewport: { width: 720, height: 560 } })
  t.teardown(() => context.close())
  context.setDefaultTimeout(BROWSER_TIMEOUT_MS)
  return { ...scene, context, dir }
}

t.test('through imagegate the generated picture renders at its real size', async (t) => {
  const { gate, pages, context } = await setup(t)
  const served = gate.link(IMAGE_NAME)
  t.not(new URL(served).origin, pages.url, 'the page and imagegate are different origins, as Open WebUI and imagegate are')

  const report = await renderChat(await context.newPage(), chatUrl(pages, 'imagegate'))

  t.equal(report.error, undefined, 'the stream ended without an error')
  t.equal(report.text, ANSWER.replace(IMAGE_PATH, served), 'the page got the answer with only the path replaced')
  t.equal(report.images.length, 1, 'one image is rendered')
  const [image] = report.images
  t.equal(image?.src, served, 'the image loads from imagegate')
  t.equal(image?.alt, 'Simple red apple on white background', 'with the alt text the model wrote')
  t.equal(image?.naturalWidth, WIDTH, 'the browser decoded the PNG: natural width')
  t.equal(image?.naturalHeight, HEIGHT, 'natural height')
  t.same(report.placeholders, [], 'no image became a placeholder')
  t.ok(report.renders > 2, `the page rendered the answer while it streamed (${report.renders} renders)`)
  t.same(report.seenSources, [served], 'while streaming, the page never tried any other source (no broken-image flash)')
  t.notOk(pages.requests.some((line) => line.includes('/root/')), 'the page never asked its own server for the agent path')
})

for (const [maxWidth, expected] of [[2048, 1024], [600, 600]] as const) {
  t.test(`a generated 1024×1024 picture arrives as WebP and renders at ${expected}×${expected} (max width ${maxWidth})`, async (t) => {
    const picture = await picturePng()
    const dir = t.testdir({ cache: { [IMAGE_NAME]: picture } })
    const { gate, pages } = await startScene(t, { cacheDir: path.join(dir, 'cache'), image: picture, gate: { compactImages: 'webp', compactMaxWidth: maxWidth } })
    const context = await browser.newContext({ viewport: { width: 720, height: 560 } })
    t.teardown(() => context.close())
    context.setDefaultTimeout(BROWSER_TIMEOUT_MS)
    const page = await context.newPage()
    const served = gate.link(IMAGE_NAME)
    const seen: Array<Promise<{ type: string | undefined, vary: string | undefined, bytes: number }>> = []
    page.on('response', (response) => {
      if (response.url() !== served) return
      const headers = response.headers()
      seen.push(response.body().then((body) => ({ type: headers['content-type'], vary: headers.vary, bytes: body.length })))
    })

    const report = await renderChat(page, chatUrl(pages, 'imagegate'))

    t.equal(report.images[0]?.src, served, 'the image loads from the signed link')
    t.equal(report.images[0]?.naturalWidth, expected, 'the browser decoded it: natural width')
    t.equal(report.images[0]?.naturalHeight, expected, 'natural height, aspect ratio kept')
    const responses = await Promise.all(seen)
    t.equal(responses.length, 1, 'one response for the image')
    t.equal(responses[0]?.type, 'image/webp', 'the browser\'s response was WebP')
    t.equal(responses[0]?.vary, 'Accept', 'marked as depending on Accept')
    t.ok((responses[0]?.bytes ?? Infinity) * 5 < picture.length, `at least 5× smaller than the PNG (${picture.length} → ${responses[0]?.bytes} bytes)`)
  })
}

t.test('in data-uri mode the picture renders without the browser ever reaching imagegate', async (t) => {
  const { gate, pages, context } = await setup(t, 'data-uri')
  const page = await context.newPage()
  const imagegateRequests: string[] = []
  page.on('request', (request) => { if (request.url().startsWith(gate.url)) imagegateRequests.push(request.url()) })

  const report = await renderChat(page, chatUrl(pages, 'imagegate'))

  t.equal(report.images.length, 1, 'one image is rendered')
  const [image] = report.images
  t.match(image?.src, /^data:image\/png;imagegate=[^;]+;sig=[^;]+;base64,/, 'from an inline data: URI carrying its name and signature')
  t.equal(image?.naturalWidth, WIDTH, 'the browser decoded it: natural width')
  t.equal(image?.naturalHeight, HEIGHT, 'natural height')
  t.same(report.placeholders, [], 'Open WebUI\'s source rule keeps data: URIs')
  t.same(imagegateRequests, [], 'the browser made no request to imagegate')
})

t.test('talking to the agent directly, the same answer shows a broken image', async (t) => {
  const { pages, context } = await setup(t)

  const report = await renderChat(await context.newPage(), chatUrl(pages, 'direct'))

  t.equal(report.text, ANSWER, 'the page got the agent text unchanged')
  t.equal(report.images.length, 1, 'the markdown image is still rendered as an image')
  const [image] = report.images
  t.equal(image?.href, IMAGE_PATH, 'its href is the container path')
  t.equal(image?.src, pages.url + IMAGE_PATH, 'which the page resolves against its own origin')
  t.equal(image?.complete, true, 'the browser gave up loading it')
  t.equal(image?.naturalWidth, 0, 'broken: no natural width')
  t.equal(image?.naturalHeight, 0, 'broken: no natural height')
  t.ok(pages.requests.includes(`GET ${IMAGE_PATH} 404`), 'the page server answered the path with 404')
})

t.test('with Cross-Origin-Embedder-Policy: require-corp on the page the image still loads', async (t) => {
  const { gate, pages, context, answer, plainImageUrl } = await setup(t)
  const served = gate.link(IMAGE_NAME)
  // Control: the same PNG from a server that sends no Cross-Origin-Resource-Policy.
  answer(`${ANSWER}\n\n![control](${plainImageUrl})`)

  const open = await renderChat(await context.newPage(), chatUrl(pages, 'imagegate'))
  t.same(open.images.map((i) => [i.src, i.naturalWidth, i.naturalHeight]), [[served, WIDTH, HEIGHT], [plainImageUrl, WIDTH, HEIGHT]],
    'without COEP both images load (the control image is fine in itself)')

  const strict = await renderChat(await context.newPage(), chatUrl(pages, 'imagegate', { coep: true }))
  t.equal(strict.images.length, 2, 'both images are rendered')
  t.same(strict.images.map((i) => i.src), [served, plainImageUrl], 'the image links are unchanged')
  t.equal(strict.images[1]?.naturalWidth, 0, 'COEP is enforced: the control image without CORP is blocked')
  t.equal(strict.images[0]?.naturalWidth, WIDTH, 'the imagegate image loads under require-corp: natural width')
  t.equal(strict.images[0]?.naturalHeight, HEIGHT, 'natural height')
})

t.test('the before/after screenshot comes from the real page', async (t) => {
  const { pages, context, dir } = await setup(t)
  const page = await context.newPage()
  await page.setViewportSize({ width: 1280, height: 540 })
  const file = path.join(dir, 'before-after.png')

  const { before, after } = await captureComparison(page, pages, file)

  t.equal(before.images[0]?.naturalWidth, 0, 'the left pane shows the broken image')
  t.equal(after.images[0]?.naturalWidth, WIDTH, 'the right pane shows the picture')
  const size = pngSize(fs.readFileSync(file))
  t.ok(size !== undefined && size.width === 1280 && size.height >= 540, `a full-page PNG screenshot was written (${JSON.stringify(size)})`)
})
