/**
 * Prometheus metrics in the text exposition format (version 0.0.4), kept by hand: a few counters, a gauge
 * and one histogram need no client library.
 */
type Labels = Record<string, string>;

const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}

  add(labels: Labels, delta: number): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += delta;
    this.values.set(key, entry);
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [labels, { value }] of this.values) lines.push(`${this.name}${labels} ${value}`);
    return lines;
  }
}

class Histogram {
  readonly series = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    const entry = this.series.get(key) ?? { labels, buckets: durationBuckets.map(() => 0), sum: 0, count: 0 };
    durationBuckets.forEach((bound, i) => {
      if (value <= bound) entry.buckets[i]! += 1;
    });
    entry.sum += value;
    entry.count += 1;
    this.series.set(key, entry);
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, buckets, sum, count } of this.series.values()) {
      durationBuckets.forEach((bound, i) =>
        lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(bound) })} ${buckets[i]}`),
      );
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${sum}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines;
  }
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

export function createMetrics() {
  const requests = new Family(
    "portcullis_http_requests_total",
    "Requests answered, by route, method and status.",
    "counter",
  );
  const bytesIn = new Family(
    "portcullis_http_received_bytes_total",
    "Bytes received from clients, by route.",
    "counter",
  );
  const bytesOut = new Family("portcullis_http_sent_bytes_total", "Bytes sent to clients, by route.", "counter");
  const tokens = new Family("portcullis_tokens_issued_total", "Tokens issued, by grant.", "counter");
  const authFailures = new Family(
    "portcullis_auth_failures_total",
    "Refused credentials and tokens, by reason.",
    "counter",
  );
  const uploads = new Family(
    "portcullis_uploads_in_flight",
    "Upload requests (POST, PATCH, PUT of blob uploads) streaming now.",
    "gauge",
  );
  const latency = new Histogram(
    "portcullis_http_request_duration_seconds",
    "Time from request to the end of the response, by route.",
  );
  uploads.add({}, 0);

  return {
    request(route: string, method: string, status: number, seconds: number, received: number, sent: number): void {
      requests.add({ route, method, status: String(status) }, 1);
      bytesIn.add({ route }, received);
      bytesOut.add({ route }, sent);
      latency.observe({ route }, seconds);
    },
    tokenIssued(grant: string): void {
      tokens.add({ grant }, 1);
    },
    authFailure(
      reason: "bad_credentials" | "invalid_token" | "insufficient_scope" | "rate_limited" | "directory_unavailable",
    ): void {
      authFailures.add({ reason }, 1);
    },
    uploadStarted(): void {
      uploads.add({}, 1);
    },
    uploadEnded(): void {
      uploads.add({}, -1);
    },
    render(): string {
      return `${[requests, bytesIn, bytesOut, tokens, authFailures, uploads, latency].flatMap((m) => m.render()).join("\n")}\n`;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
