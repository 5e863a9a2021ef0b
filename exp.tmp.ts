import { connect } from 'node:net'
import { startTestHttpApp, TEST_TOKEN } from './test/helpers/http-app.ts'
const t = await startTestHttpApp()
const port = Number(new URL(t.url).port)
async function exchange(reqs: Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let out = ''
    s.on('data', (d) => { out += d.toString('latin1') })
    s.on('error', (e) => { out += `\n<<error ${e.message}>>` })
    s.on('close', () => resolve(out))
    s.on('connect', async () => {
      for (const r of reqs) { s.write(r); await new Promise((r) => setTimeout(r, 300)) }
      setTimeout(() => s.end(), 1500)
    })
  })
}
const big = Buffer.alloc(2 * 1024 * 1024, 97)
const post = (path: string, auth: string) => Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`), big])
const get = Buffer.from(`GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${TEST_TOKEN}\r\n\r\n`)
const tok = await t.createPsaToken('a')
for (const [name, p] of [['cluster', post('/pins/bafkqaaa', `Basic ${TEST_TOKEN}`)], ['psa', post('/psa/pins', `Bearer ${tok}`)]] as const) {
  const out = await exchange([p, get])
  console.log('=====', name, '\n', out.replace(/\r/g, '').slice(0, 1500))
}
const r = await fetch(`${t.url}/nope`, { headers: { authorization: `Basic ${TEST_TOKEN}` } })
console.log(r.status, r.headers.get('content-type'), await r.text())
const q = await fetch(`${t.url}/pins?x=${'a'.repeat(20000)}`, { headers: { authorization: `Basic ${TEST_TOKEN}` } })
console.log(q.status, q.headers.get('content-type'), await q.text())
await t.stop()
