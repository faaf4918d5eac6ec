// The Dockerfile built and the image run for real (with podman): an answer streamed
// through the container, its image served by the unprivileged user, the HEALTHCHECK on
// a port other than the default, the signing key kept in the state volume, SIGTERM to
// PID 1, a cache file the container's user cannot read, and the compose file's service
// with the settings docker-compose resolves. Takes minutes: the first run on a machine
// builds the base image from Debian packages (test/fixtures/container/).
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { folderId } from '../../src/files/names.js'
import { createSigner } from '../../src/files/signing.js'
import { contentOf, dataLines } from '../fixtures/gate.js'
import { postJson, send } from '../fixtures/http.js'
import { DONE, FINISH, ROLE, contentEvents } from '../fixtures/chat.js'
import { sse, startMockUpstream } from '../fixtures/mock-upstream.js'
import type { MockUpstream } from '../fixtures/mock-upstream.js'
import { heldStream, startStream } from '../fixtures/held-stream.js'
import { applePng } from '../fixtures/png.js'
import { freePort, idleConnection } from '../fixtures/raw-socket.js'
import { IMAGE, RUN_FLAGS, buildImage, missingCommands, podman, podmanOk, resources, run, until } from '../fixtures/container/podman.js'
import { errorBody } from '../../src/errors.js'

/** The official image's `node` user, which the Dockerfile runs as. */
const NODE_UID = 1000
/** Docker's default for `docker stop` before it sends SIGKILL. */
const DOCKER_STOP_SECONDS = 10
/** Where the agent believes its images are; the container finds them by name. */
const AGENT_CACHE = '/home/agent/.hermes/cache/images'
/** The id in links to files of the images folder, as mounted in the container. */
const IMAGES_ID = folderId('/hermes/cache/images')
const SHUTTING_DOWN = JSON.stringify(errorBody('server_shutting_down', 'answer-cut'))

// debootstrap, the image store and files owned by another uid need root.
const skip = process.env.IMAGEGATE_TEST_CONTAINER === 'skip'
  ? 'IMAGEGATE_TEST_CONTAINER=skip'
  : process.getuid?.() !== 0
    ? 'it needs root'
    : missingCommands(['podman', 'runc', 'debootstrap']).map((name) => `${name} is not installed`).join(', ')

if (skip !== '') {
  t.plan(0, `container suite skipped: ${skip}`)
} else {
  // The base image and a cold build take minutes on a busy 2-core machine.
  t.setTimeout(20 * 60_000)
  const made = resources('imagegate-test')
  t.teardown(made.remove)

  const timing = await buildImage()
  t.comment(`base image ${timing.baseSeconds.toFixed(1)} s, podman build ${timing.buildSeconds.toFixed(1)} s`)

  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())

  await suite(made, upstream)
}

async function suite (made: ReturnType<typeof resources>, upstream: MockUpstream): Promise<void> {
  const picture = applePng(64, 64)
  // The agent's home as the host has it: only its cache is mounted, read-only.
  const home = t.testdir({ cache: { images: { 'chart.png': picture } } })
  const state = made.volume()
  let link = ''
  let port = 0
  let name = ''

  t.test('an answer streamed through the container: its image path becomes a link the node user serves', async t => {
    port = await freePort('127.0.0.1', [8090])
    name = made.container()
    const started = Date.now()
    await podmanOk(['run', '--detach', '--name', name, ...RUN_FLAGS,
      '-v', `${path.join(home, 'cache')}:/hermes/cache:ro`, '-e', 'HERMES_HOME=/hermes',
      '-v', `${state}:/var/lib/imagegate`,
      IMAGE, '--upstream', upstream.url, '--port', String(port), '--public-url', `http://127.0.0.1:${port}`])
    const url = `http://127.0.0.1:${port}`
    await untilHealthz(url)
    t.comment(`container answered /healthz ${((Date.now() - started) / 1000).toFixed(1)} s after podman run`)

    upstream.handle(sse([ROLE, ...contentEvents(['Here: ![chart](', `${AGENT_CACHE}/chart.png)`, ' done']), FINISH, DONE]))
    const answer = await postJson(url, '/v1/chat/completions', { model: 'hermes-agent', stream: true, messages: [{ role: 'user', content: 'draw' }] })
    t.equal(answer.status, 200, 'streamed')
    const text = contentOf(answer.text)
    const found = new RegExp(`^Here: !\\[chart\\]\\((http://127\\.0\\.0\\.1:${port}/images/${IMAGES_ID}/chart\\.png\\?sig=[\\w-]+)\\) done$`).exec(text)
    t.ok(found !== null, `the agent's path is rewritten into a signed link: ${text}`)
    link = found?.[1] ?? ''
    t.equal(dataLines(answer.text).at(-1), '[DONE]', 'the stream ends as the upstream\'s did')

    const image = await send(url, { path: link.slice(url.length) })
    t.equal(image.status, 200, 'the link is served')
    t.equal(image.headers['content-type'], 'image/png', 'as a PNG')
    t.ok(image.body.equals(picture), 'byte for byte')

    const status = await podmanOk(['exec', name, 'cat', '/proc/1/status'])
    t.match(status, new RegExp(`^Uid:\\s+${NODE_UID}\\s+${NODE_UID}\\s+${NODE_UID}\\s+${NODE_UID}$`, 'm'), 'PID 1 runs as node (uid 1000), real and effective')
    const cmdline = (await podmanOk(['exec', name, 'cat', '/proc/1/cmdline'])).split('\0')
    t.same(cmdline.slice(0, 2), ['node', 'dist/cli.js'], 'PID 1 is imagegate itself, as the image\'s ENTRYPOINT starts it')
  })

  t.test('the HEALTHCHECK follows the port the server listens on', async t => {
    const config = JSON.parse(await podmanOk(['image', 'inspect', '--format', '{{json .Config.Healthcheck}}', IMAGE])) as { Test: string[] }
    t.same(config.Test, ['CMD', 'node', 'dist/healthcheck.js'], 'the image keeps the Dockerfile\'s HEALTHCHECK')
    const command = config.Test.slice(1)

    t.not(port, 8090, 'the first container listens on a port other than the default')
    let check = await podman(['exec', name, ...command])
    t.equal(check.code, 0, `healthy with --port ${port}: ${check.stderr}`)
    t.equal(check.stdout, `imagegate healthcheck: http://127.0.0.1:${port}/healthz ok\n`, 'it asked that port')
    check = await podman(['healthcheck', 'run', name])
    t.equal(check.code, 0, `podman healthcheck run: healthy (${check.stdout.trim()}${check.stderr.trim()})`)

    // IMAGEGATE_PORT, with an init as PID 1 (compose's init: true): imagegate is a child.
    const other = made.container()
    const otherPort = await freePort('127.0.0.1', [8090])
    await podmanOk(['run', '--detach', '--init', '--name', other, ...RUN_FLAGS, '-e', `IMAGEGATE_PORT=${otherPort}`,
      IMAGE, '--upstream', upstream.url])
    await untilHealthz(`http://127.0.0.1:${otherPort}`)
    check = await podman(['exec', other, ...command])
    t.equal(check.code, 0, `healthy with IMAGEGATE_PORT=${otherPort} behind an init: ${check.stderr}`)
    t.equal(check.stdout, `imagegate healthcheck: http://127.0.0.1:${otherPort}/healthz ok\n`, 'it asked that port')

    // A server that no longer answers: imagegate stopped (SIGSTOP), its socket still open.
    // eslint-disable-next-line no-template-curly-in-string -- a shell parameter expansion, for sh
    const pid = (await podmanOk(['exec', other, 'sh', '-c', 'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline | grep -q "^node dist/cli.js" && echo ${p#/proc/}; done'])).trim()
    t.match(pid, /^\d+$/, `imagegate's pid in the container: ${pid}`)
    t.not(pid, '1', 'not PID 1: the init is')
    await podmanOk(['exec', other, 'sh', '-c', `kill -STOP ${pid}`])
    check = await podman(['exec', other, ...command])
    t.equal(check.code, 1, 'unhealthy while imagegate does not answer')
    t.equal(check.stderr, `imagegate healthcheck: http://127.0.0.1:${otherPort}/healthz failed: TimeoutError\n`, 'says which URL failed, and how')
    check = await podman(['healthcheck', 'run', other])
    t.not(check.code, 0, `podman healthcheck run: not healthy (${check.stdout.trim()})`)
    await podmanOk(['exec', other, 'sh', '-c', `kill -CONT ${pid}`])
    check = await podman(['exec', other, ...command])
    t.equal(check.code, 0, 'healthy again once it answers')
  })

  t.test('the signing key lives in the state volume: links outlive the container', async t => {
    t.ok(link !== '', 'a link from the first container')
    await podmanOk(['rm', '--force', '--volumes', '--time', '0', name])
    const replacement = made.container()
    await podmanOk(['run', '--detach', '--name', replacement, ...RUN_FLAGS,
      '-v', `${path.join(home, 'cache')}:/hermes/cache:ro`, '-e', 'HERMES_HOME=/hermes',
      '-v', `${state}:/var/lib/imagegate`,
      IMAGE, '--upstream', upstream.url, '--port', String(port), '--public-url', `http://127.0.0.1:${port}`])
    const url = `http://127.0.0.1:${port}`
    await untilHealthz(url)
    const image = await send(url, { path: link.slice(url.length) })
    t.equal(image.status, 200, 'the old link works in a new container on the same volume')
    t.ok(image.body.equals(picture), 'the same bytes')
    const key = await podmanOk(['exec', replacement, 'stat', '-c', '%U %a', '/var/lib/imagegate/signing-key'])
    t.equal(key.trim(), 'node 600', 'the key file belongs to node, readable by it alone')
    await podmanOk(['rm', '--force', '--volumes', '--time', '0', replacement])

    // Without the volume, the same image makes a key of its own: the link is refused.
    const fresh = made.container()
    await podmanOk(['run', '--detach', '--name', fresh, ...RUN_FLAGS,
      '-v', `${path.join(home, 'cache')}:/hermes/cache:ro`, '-e', 'HERMES_HOME=/hermes',
      IMAGE, '--upstream', upstream.url, '--port', String(port), '--public-url', `http://127.0.0.1:${port}`])
    await untilHealthz(url)
    const refused = await send(url, { path: link.slice(url.length) })
    t.equal(refused.status, 404, 'another state folder, another key: the old signature is refused (404, as for any unknown name)')
    await podmanOk(['rm', '--force', '--volumes', '--time', '0', fresh])
  })

  t.test('SIGTERM to PID 1: podman stop ends imagegate well before the engine would kill it', async t => {
    const stream = heldStream([ROLE, ...contentEvents(['Working'])], [])
    upstream.handle(stream.handler)
    t.teardown(stream.release)
    const container = made.container()
    const stopPort = await freePort('127.0.0.1', [8090])
    const url = `http://127.0.0.1:${stopPort}`
    // The image as `docker run` starts it: imagegate is PID 1, no init.
    await podmanOk(['run', '--detach', '--name', container, ...RUN_FLAGS, IMAGE, '--upstream', upstream.url, '--port', String(stopPort)])
    await untilHealthz(url)

    const reader = await startStream(url, '{"stream": true, "messages": []}')
    await until(() => reader.text().includes('Working'), 'the first event')
    const idle = await idleConnection(t, url)
    const started = Date.now()
    const stopped = await podman(['stop', '--time', String(DOCKER_STOP_SECONDS), container])
    const seconds = (Date.now() - started) / 1000
    t.comment(`podman stop took ${seconds.toFixed(1)} s with a running stream and an idle keep-alive connection`)
    t.equal(stopped.code, 0, 'podman stop succeeds')
    t.ok(seconds < DOCKER_STOP_SECONDS, `stopped in ${seconds.toFixed(1)} s, before the ${DOCKER_STOP_SECONDS} s after which the engine sends SIGKILL`)
    const exit = (await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', container])).trim()
    t.equal(exit, '0', 'exit code 0: imagegate ended itself, it was not killed')
    await reader.closed
    t.equal(dataLines(reader.text()).at(-1), SHUTTING_DOWN, 'the running stream ends with the shutdown error event')
    t.ok(idle.isClosed(), 'the idle keep-alive connection was closed')
  })

  t.test('a second SIGTERM ends imagegate at once', async t => {
    const stream = heldStream([ROLE, ...contentEvents(['Working'])], [])
    upstream.handle(stream.handler)
    t.teardown(stream.release)
    const container = made.container()
    const termPort = await freePort('127.0.0.1', [8090])
    const url = `http://127.0.0.1:${termPort}`
    await podmanOk(['run', '--detach', '--name', container, ...RUN_FLAGS, IMAGE, '--upstream', upstream.url, '--port', String(termPort)])
    await untilHealthz(url)
    const reader = await startStream(url, '{"stream": true, "messages": []}')
    await until(() => reader.text().includes('Working'), 'the first event')

    await podmanOk(['kill', '--signal', 'TERM', container])
    await until(async () => (await podmanOk(['logs', container])).includes('shutting down'), 'the first signal to start the shutdown', 5000)
    t.equal((await podmanOk(['inspect', '--format', '{{.State.Running}}', container])).trim(), 'true', 'still draining the running stream after the first')
    const started = Date.now()
    await podmanOk(['kill', '--signal', 'TERM', container])
    const waited = await podman(['wait', container])
    const seconds = (Date.now() - started) / 1000
    t.comment(`exited ${seconds.toFixed(2)} s after the second SIGTERM`)
    t.equal(waited.code, 0, 'podman wait saw it end')
    t.equal(waited.stdout.trim(), '143', 'imagegate ended itself with 128 + SIGTERM, not killed by the engine')
    // Waiting for the stream would take the default grace (8 s); podman's own kill and
    // wait take a good part of a second on a loaded machine.
    t.ok(seconds < 6, `ended ${seconds.toFixed(2)} s after the second signal, without waiting for the stream's grace`)
  })

  t.test('a cache file the container\'s user cannot read is never linked, and /images never fails with 500', async t => {
    const key = randomBytes(24).toString('hex')
    const signer = createSigner(key)
    // As hermes in its own container writes it: another uid, mode 600.
    const cache = t.testdir({ images: { 'private.png': picture, 'public.png': picture } })
    const privateFile = path.join(cache, 'images', 'private.png')
    chownSync(privateFile, 10000, 10000)
    chmodSync(privateFile, 0o600)
    const container = made.container()
    const filesPort = await freePort('127.0.0.1', [8090])
    const url = `http://127.0.0.1:${filesPort}`
    await podmanOk(['run', '--detach', '--name', container, ...RUN_FLAGS,
      '-v', `${cache}:/hermes/cache:ro`, '-e', 'HERMES_HOME=/hermes', '-e', `IMAGEGATE_SIGNING_KEY=${key}`,
      IMAGE, '--upstream', upstream.url, '--port', String(filesPort), '--public-url', url])
    await untilHealthz(url)

    upstream.handle(sse([...contentEvents([`![a](${AGENT_CACHE}/private.png) and ![b](${AGENT_CACHE}/public.png)`]), DONE]))
    const answer = await postJson(url, '/v1/chat/completions', { model: 'hermes-agent', stream: true, messages: [] })
    const publicName = `${IMAGES_ID}/public.png`
    const publicLink = `${url}/images/${publicName}?sig=${signer.sign(publicName)}`
    t.equal(contentOf(answer.text), `![a](${AGENT_CACHE}/private.png) and ![b](${publicLink})`, 'the unreadable file stays text; the readable one is linked')

    const privateName = `${IMAGES_ID}/private.png`
    const direct = await send(url, { path: `/images/${privateName}?sig=${signer.sign(privateName)}` })
    t.not(direct.status, 500, `a signed link to the unreadable file: ${direct.status}, not 500`)
    t.equal(direct.status, 404, 'not found, as for any file imagegate cannot deliver')

    // Readable when linked, unreadable by the time the browser asks.
    const publicFile = path.join(cache, 'images', 'public.png')
    chownSync(publicFile, 10000, 10000)
    chmodSync(publicFile, 0o600)
    const later = await send(url, { path: `/images/${publicName}?sig=${signer.sign(publicName)}` })
    t.equal(later.status, 404, `a file that became unreadable after it was linked: ${later.status}, not 500`)
  })

  t.test('the compose service run as compose runs it: its mount, environment and init; stopped within its grace', { skip: missingCommands(['docker-compose']).length > 0 ? 'docker-compose is not installed' : false }, async t => {
    const service = await composeService(home)
    const stopSeconds = Number(/^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1])
    t.ok(stopSeconds > 0, `stop_grace_period ${String(service.stop_grace_period)}`)
    const composePort = await freePort('127.0.0.1', [8090])
    const url = `http://127.0.0.1:${composePort}`
    // As compose would start it, except for the network: the host's, where the mock
    // upstream is, in place of the project network and host.docker.internal.
    const command = (service.command ?? []).map((arg, i, all) =>
      all[i - 1] === '--upstream' ? upstream.url : all[i - 1] === '--public-url' ? url : arg)
    const volumes = (service.volumes ?? []).map((entry) => entry.startsWith('/') ? entry : `${made.volume()}${entry.slice(entry.indexOf(':'))}`)
    const container = made.container()
    await podmanOk(['run', '--detach', '--name', container, ...RUN_FLAGS,
      ...service.init === true ? ['--init'] : [], '--stop-timeout', String(stopSeconds),
      ...Object.entries(service.environment ?? {}).flatMap(([key, value]) => ['-e', `${key}=${String(value)}`]),
      '-e', `IMAGEGATE_PORT=${composePort}`,
      ...volumes.flatMap((volume) => ['-v', volume]),
      IMAGE, ...command])
    await untilHealthz(url)

    upstream.handle(sse([...contentEvents([`![chart](${AGENT_CACHE}/chart.png)`]), DONE]))
    const answer = await postJson(url, '/v1/chat/completions', { model: 'hermes-agent', stream: true, messages: [] })
    const found = new RegExp(`^!\\[chart\\]\\((http://127\\.0\\.0\\.1:${composePort}/images/${IMAGES_ID}/chart\\.png\\?sig=[\\w-]+)\\)$`).exec(contentOf(answer.text))
    t.ok(found !== null, 'the agent\'s image is found through the mounted cache and HERMES_HOME')
    const image = await send(url, { path: (found?.[1] ?? '').slice(url.length) })
    t.ok(image.status === 200 && image.body.equals(picture), 'and served byte for byte')

    const stream = heldStream([ROLE, ...contentEvents(['Working'])], [])
    upstream.handle(stream.handler)
    t.teardown(stream.release)
    const reader = await startStream(url, '{"stream": true, "messages": []}')
    await until(() => reader.text().includes('Working'), 'the first event')
    const started = Date.now()
    const stopped = await podman(['stop', container])
    const seconds = (Date.now() - started) / 1000
    t.comment(`podman stop (timeout ${stopSeconds} s, behind an init) took ${seconds.toFixed(1)} s with a running stream`)
    t.equal(stopped.code, 0, 'podman stop succeeds')
    t.ok(seconds < stopSeconds, `stopped in ${seconds.toFixed(1)} s, inside stop_grace_period`)
    t.equal((await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', container])).trim(), '0', 'exit code 0: the init passed SIGTERM on, imagegate ended itself')
    await reader.closed
    t.equal(dataLines(reader.text()).at(-1), SHUTTING_DOWN, 'the running stream ends with the shutdown error event')
  })
}

interface ComposeService {
  command?: string[]
  environment?: Record<string, string>
  volumes?: string[]
  init?: boolean
  stop_grace_period?: string
}

/** The imagegate service as docker-compose resolves it, with HERMES_HOME set to `home`. */
async function composeService (home: string): Promise<ComposeService> {
  const result = await run('docker-compose', ['--file', 'docker-compose.yml', 'config'], {
    env: { PATH: process.env.PATH ?? '', HOME: home, HERMES_HOME: home, OPENAI_API_KEY: 'sk-test' }
  })
  if (result.code !== 0) throw new Error(`docker-compose config exited ${String(result.code)}: ${result.stderr}`)
  return (parse(result.stdout) as { services: { imagegate: ComposeService } }).services.imagegate
}

async function untilHealthz (url: string): Promise<void> {
  await until(() => send(url, { path: '/healthz' }).then((res) => res.status === 200, () => false), `${url}/healthz`, 30_000)
}
