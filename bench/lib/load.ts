/**
 * A small closed-loop load generator: `concurrency` loops each send a request as soon as the previous one
 * answered, for `durationMs`. Prints requests per second and latency percentiles.
 */
export interface LoadResult {
  name: string
  concurrency: number
  requests: number
  errors: number
  rps: number
  p50Ms: number
  p99Ms: number
}

export async function measure(
  name: string,
  concurrency: number,
  durationMs: number,
  send: (i: number) => Promise<Response>,
): Promise<LoadResult> {
  const latencies: number[] = []
  let errors = 0
  let i = 0
  const deadline = performance.now() + durationMs
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now()
        try {
          const res = await send(i++)
          await res.arrayBuffer()
          if (!res.ok) errors++
        } catch {
          errors++
        }
        latencies.push(performance.now() - t0)
      }
    }),
  )
  const elapsed = performance.now() - started
  latencies.sort((a, b) => a - b)
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0
  return {
    name,
    concurrency,
    requests: latencies.length,
    errors,
    rps: (latencies.length / elapsed) * 1000,
    p50Ms: pct(50),
    p99Ms: pct(99),
  }
}

export function printTable(results: LoadResult[]): void {
  const rows = results.map((r) => ({
    endpoint: r.name,
    concurrency: r.concurrency,
    'req/s': r.rps.toFixed(0),
    'p50 ms': r.p50Ms.toFixed(2),
    'p99 ms': r.p99Ms.toFixed(2),
    errors: r.errors,
  }))
  console.table(rows)
}
