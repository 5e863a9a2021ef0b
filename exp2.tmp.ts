import { connect } from 'node:net'
import { startTestHttpApp, TEST_TOKEN } from './test/helpers/http-app.ts'
const t = await startTestHttpApp()
const port = Number(new URL(t.url).port)
const t0 = Date.now()
async function exchange(reqs: Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let out = ''
    s.on('data', (d) => { out += `\n[${Date.now()-t0} data ${d.length}]` + d.toString('latin1').slice(0,60) })
    s.on('error', (e) => { out += `\n[${Date.now()-t0}]<<error ${e.message}>>` })
    s.on('end', () => { out += `\n[${Date.now()-t0}] end` })
    s.on('close', () => resolve(out))
    s.on('connect', async () => {
      for (const r of reqs) { const ok = s.write(r); out += `\n[${Date.now()-t0}] wrote ${r.length} ${ok}`; await new Promise((r) => setTimeout(r, 300)) }
      setTimeout(() => s.end(), 1500)
    })
  })
}
const big = Buffer.alloc(Number(process.argv[2] ?? 2*1024*1024), 97)
const post = (path: string, auth: string) => Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`), big])
const get = Buffer.from(`GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${TEST_TOKEN}\r\n\r\n`)
const tok = await t.createPsaToken('a')
console.log(await exchange([post('/psa/pins', `Bearer ${tok}`), get]))
await t.stop()
