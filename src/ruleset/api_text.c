/* api_text: the text of /stats (the reference's layout) and /metrics
 * (Prometheus text format 0.0.4, the reference's names plus ours). */
#include "ruleset/api_text.h"


#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "privsep/sandbox.h"
#include "ruleset/codeinfo.h"

/* The formatters below write display strings into small buffers; a value
 * too large to fit is cut, which is harmless for a human-read line. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* 632B, 1.60KiB, 99.4KiB, 512MiB, -16.9KiB */
static const char *fmt_bytes(char *buf, size_t cap, double v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	int u = 0;

	if (v < 0 && cap > 1) {
		buf[0] = '-';
		fmt_bytes(buf + 1, cap - 1, -v);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%.0f%s", v, units[u]);
	else
		snprintf(buf, cap, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s"
							       : "%.0f%s",
			 v, units[u]);
	return buf;
}

/* 72.00µs, 394.2µs, 1.436ms, 1012ms, 12.34s, 3:07.5, 12:03, 1:02:03,
 * 2d 01:02:03 */
static const char *fmt_dur(char *buf, size_t cap, double s)
{
	if (s < 1e-3)
		snprintf(buf, cap, s < 1e-4 ? "%.2fµs" : "%.1fµs", s * 1e6);
	else if (s < 1)
		snprintf(buf, cap, s < 1e-2 ? "%.3fms" : s < 0.1 ? "%.2fms"
								  : "%.1fms",
			 s * 1e3);
	else if (s < 10)
		snprintf(buf, cap, "%.0fms", s * 1e3);
	else if (s < 60)
		snprintf(buf, cap, "%.2fs", s);
	else if (s < 600)
		snprintf(buf, cap, "%d:%04.1f", (int)(s / 60), fmod(s, 60));
	else if (s < 3600)
		snprintf(buf, cap, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
	else if (s < 86400)
		snprintf(buf, cap, "%d:%02d:%02d", (int)(s / 3600),
			 (int)fmod(s / 60, 60), (int)fmod(s, 60));
	else
		snprintf(buf, cap, "%dd %02d:%02d:%02d", (int)(s / 86400),
			 (int)fmod(s / 3600, 24), (int)fmod(s / 60, 60),
			 (int)fmod(s, 60));
	return buf;
}

/* 1.47k, 20.3M */
static const char *fmt_si(char *buf, size_t cap, double v)
{
	static const char *const units[] = { "", "k", "M", "G", "T" };
	int u = 0;

	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	snprintf(buf, cap, u == 0 ? "%.0f%s" : v < 10 ? "%.2f%s" : "%.1f%s", v,
		 units[u]);
	return buf;
}

/* "module=NAME sha256=HEX applied=TIME" for each piece of code that
 * runs, each between prefix and suffix. */
void text_ruleset_info(struct growbuf *d, const char *prefix,
		       const char *suffix)
{
	const struct codeinfo *e;
	size_t n = codeinfo_list(&e);

	for (size_t i = 0; i < n; i++) {
		char t[32];
		struct tm tm;
		time_t sec = (time_t)e[i].applied;

		gmtime_r(&sec, &tm);
		strftime(t, sizeof(t), "%FT%TZ", &tm);
		growbuf_printf(d, "%smodule=%s sha256=%s applied=%s%s", prefix,
			       e[i].name, e[i].sha256, t, suffix);
	}
}

static void line(struct growbuf *d, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void line(struct growbuf *d, const char *label, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	growbuf_printf(d, "%-20s: %s\n", label, buf);
}

static void fmt_percentiles(char *buf, size_t cap, double p50, double p90,
			    double p99, double max)
{
	char a[32], b[32], c[32], e[32];

	snprintf(buf, cap, "P50=%s P90=%s P99=%s MAX=%s",
		 fmt_dur(a, sizeof(a), p50), fmt_dur(b, sizeof(b), p90),
		 fmt_dur(c, sizeof(c), p99), fmt_dur(e, sizeof(e), max));
}

/* "Time Cost           : 85.07µs" for /ruleset/update and /ruleset/gc.
 * (Declared by its user too: api_text.h is not this change's to edit.) */
void text_time_cost(struct growbuf *d, double seconds)
{
	char a[32];

	line(d, "Time Cost", "%s", fmt_dur(a, sizeof(a), seconds));
}

void text_runtime(struct growbuf *d, const struct stats_view *v)
{
	char a[32], b[32], c[32];

	line(d, "Ruleset Allocated", "%s < %s (%s objects)",
	     fmt_bytes(a, sizeof(a), (double)v->lua_mem),
	     fmt_bytes(b, sizeof(b), (double)v->lua_limit),
	     fmt_si(c, sizeof(c), (double)v->lua_objects));
	line(d, "Ruleset Threads", "%u (peak %u)", v->threads,
	     v->threads_peak);
	if (v->nevents > 0) {
		char p[160];

		fmt_percentiles(p, sizeof(p), v->ev_p50, v->ev_p90, v->ev_p99,
				v->ev_max);
		line(d, "Ruleset Events", "%s", p);
	} else {
		line(d, "Ruleset Events", "(never)");
	}
}

void text_gc(struct growbuf *d, const struct stats_view *v, double dmem,
	     double dobjects)
{
	char a[32], b[32];

	if (dobjects <= -1000 || dobjects >= 1000) {
		fmt_si(b + 1, sizeof(b) - 1, dobjects < 0 ? -dobjects : dobjects);
		b[0] = dobjects < 0 ? '-' : '+';
	} else {
		snprintf(b, sizeof(b), "%+.0f", dobjects);
	}
	line(d, "Difference", "%s (%s objects)", fmt_bytes(a, sizeof(a), dmem),
	     b);
	text_runtime(d, v);
}

void text_stats(struct growbuf *d, const struct stats_view *v, bool banner,
		bool server, bool runtime, const struct stats_view *prev)
{
	const struct msg_stats *f = &v->front;
	char t[64], a[32], b[32];
	struct tm tm;
	time_t now = (time_t)v->wall;

	if (banner)
		growbuf_printf(d,
			       "neosocksd %s\n  https://github.com/hexian000/"
			       "neosocksd (API compatible)\n\n",
			       NEOSOCKSD_VERSION);
	if (!server)
		return;
	localtime_r(&now, &tm);
	strftime(t, sizeof(t), "%FT%T%z", &tm);
	if (strlen(t) >= 5) { /* +hhmm -> +hh:mm */
		size_t n = strlen(t);
		memmove(t + n - 1, t + n - 2, 3);
		t[n - 2] = ':';
	}
	line(d, "Server Time", "%s", t);
	line(d, "Uptime", "%s", fmt_dur(a, sizeof(a), v->uptime));
	line(d, "Num Sessions", "%u (+%u) peak=%u", f->active, f->halfopen,
	     f->peak);
	line(d, "Num Rejected", "ruleset=%llu, timeout=%llu, upstream=%llu",
	     (unsigned long long)f->reject_ruleset,
	     (unsigned long long)f->reject_timeout,
	     (unsigned long long)f->reject_upstream);
	line(d, "Conn Accepts", "%llu (+%llu)",
	     (unsigned long long)(f->accepts - f->accept_drops),
	     (unsigned long long)f->accept_drops);
	line(d, "Name Resolves", "%llu (+%llu)",
	     (unsigned long long)f->dns_success,
	     (unsigned long long)(f->dns_queries - f->dns_success));
	line(d, "Requests", "%llu (+%llu), Rx %s, Tx %s",
	     (unsigned long long)f->success,
	     (unsigned long long)(f->requests - f->success),
	     fmt_bytes(a, sizeof(a), (double)f->hs_rx),
	     fmt_bytes(b, sizeof(b), (double)f->hs_tx));
	line(d, "API Requests", "%llu (+%llu), Rx %s, Tx %s",
	     (unsigned long long)v->api.success,
	     (unsigned long long)(v->api.requests - v->api.success),
	     fmt_bytes(a, sizeof(a), (double)v->api.rx),
	     fmt_bytes(b, sizeof(b), (double)v->api.tx));
	line(d, "Handshake Dial", "Rx %s, Tx %s",
	     fmt_bytes(a, sizeof(a), (double)f->dial_rx),
	     fmt_bytes(b, sizeof(b), (double)f->dial_tx));
	line(d, "Traffic", "Up %s, Down %s",
	     fmt_bytes(a, sizeof(a), (double)f->bytes_up),
	     fmt_bytes(b, sizeof(b), (double)f->bytes_down));
	line(d, "UDP Relay", "%u (%llu ever), Up %llu (%s), Down %llu (%s), "
			     "dropped %llu",
	     f->udp_active, (unsigned long long)f->udp_assocs,
	     (unsigned long long)f->udp_pkts_up,
	     fmt_bytes(a, sizeof(a), (double)f->udp_bytes_up),
	     (unsigned long long)f->udp_pkts_down,
	     fmt_bytes(b, sizeof(b), (double)f->udp_bytes_down),
	     (unsigned long long)f->udp_drops);
	line(d, "API Client", "%llu reqs, Rx %s, Tx %s",
	     (unsigned long long)v->rpc_requests,
	     fmt_bytes(a, sizeof(a), (double)v->rpc_rx),
	     fmt_bytes(b, sizeof(b), (double)v->rpc_tx));
	if (runtime)
		text_runtime(d, v);
	if (f->nlat > 0) {
		char p[160];
		fmt_percentiles(p, sizeof(p), f->lat_p50_us / 1e6,
				f->lat_p90_us / 1e6, f->lat_p99_us / 1e6,
				f->lat_max_us / 1e6);
		line(d, "Connect Latency", "%s", p);
	} else {
		line(d, "Connect Latency", "(never)");
	}
	text_ruleset_info(d, "Ruleset Info        : ", "\n");
	if (prev == NULL)
		return;
	/* POST: rates since the previous POST */
	double dt = v->uptime - prev->uptime;
	const struct msg_stats *g = &prev->front;
	if (dt <= 0)
		dt = 1e-9;
	line(d, "Accept Rate", "%.1f/s (+%.1f/s)",
	     (double)((f->accepts - f->accept_drops) -
		      (g->accepts - g->accept_drops)) / dt,
	     (double)(f->accept_drops - g->accept_drops) / dt);
	line(d, "Request Rate", "%.1f/s (API+%.1f/s)",
	     (double)(f->requests - g->requests) / dt,
	     (double)(v->api.requests - prev->api.requests) / dt);
	line(d, "Reject Rate", "ruleset=%.1f/s, timeout=%.1f/s, upstream=%.1f/s",
	     (double)(f->reject_ruleset - g->reject_ruleset) / dt,
	     (double)(f->reject_timeout - g->reject_timeout) / dt,
	     (double)(f->reject_upstream - g->reject_upstream) / dt);
	line(d, "Throughput", "Up %s/s, Down %s/s",
	     fmt_bytes(a, sizeof(a), (double)(f->bytes_up - g->bytes_up) / dt),
	     fmt_bytes(b, sizeof(b),
		       (double)(f->bytes_down - g->bytes_down) / dt));
	if (prev->cpu_ns == 0)
		line(d, "Server Load", "(unknown) (last %s)",
		     fmt_dur(a, sizeof(a), dt));
	else
		line(d, "Server Load", "%.03f%% (last %s)",
		     (double)(v->cpu_ns - prev->cpu_ns) / 1e9 / dt * 100,
		     fmt_dur(a, sizeof(a), dt));
}

/* ---- /metrics ---- */

static void family(struct growbuf *d, const char *name, const char *type,
		   const char *help)
{
	growbuf_printf(d, "# HELP neosocksd_%s %s\n# TYPE neosocksd_%s %s\n",
		       name, help, name, type);
}

static void metric(struct growbuf *d, const char *name, const char *type,
		   const char *help, double value)
{
	family(d, name, type, help);
	growbuf_printf(d, "neosocksd_%s %.17g\n", name, value);
}

static void metric_sandbox(struct growbuf *d, const char *role, unsigned bits)
{
	static const struct {
		unsigned bit;
		const char *name;
	} layers[] = {
		{ SANDBOX_SECCOMP, "seccomp" },   { SANDBOX_NNP, "nnp" },
		{ SANDBOX_CAPS, "caps" },         { SANDBOX_USER, "user" },
		{ SANDBOX_CHROOT, "chroot" },     { SANDBOX_NETNS, "netns" },
		{ SANDBOX_LANDLOCK, "landlock" },
	};

	for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++)
		growbuf_printf(
			d,
			"neosocksd_sandbox_layer{role=\"%s\",layer=\"%s\"} "
			"%d\n",
			role, layers[i].name, (bits & layers[i].bit) != 0);
}

static void metric_ruleset_info(struct growbuf *d)
{
	const struct codeinfo *e;
	size_t n = codeinfo_list(&e);

	family(d, "ruleset_info", "gauge",
	       "The code that runs: the ruleset's and each module's sha256.");
	for (size_t i = 0; i < n; i++)
		growbuf_printf(d,
			       "neosocksd_ruleset_info{module=\"%s\","
			       "sha256=\"%s\"} 1\n",
			       e[i].name, e[i].sha256);
	family(d, "ruleset_applied_timestamp_seconds", "gauge",
	       "When the ruleset and each module were applied.");
	for (size_t i = 0; i < n; i++)
		growbuf_printf(d,
			       "neosocksd_ruleset_applied_timestamp_seconds{"
			       "module=\"%s\"} %.3f\n",
			       e[i].name, e[i].applied);
}

/* The front workers one by one (label worker="1".."N"): what the families
 * above sum. A worker that did not answer (restarting) has no sample. */
static void text_metrics_workers(struct growbuf *d,
				 const struct stats_view *v)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
		bool wide; /* uint64_t, else uint32_t */
	} fams[] = {
#define W64(n, t, h, f) { n, t, h, offsetof(struct stats_worker, f), true }
#define W32(n, t, h, f) { n, t, h, offsetof(struct stats_worker, f), false }
		W32("worker_sessions_active", "gauge",
		    "Sessions relaying, by front worker.", active),
		W32("worker_halfopen_connections", "gauge",
		    "Connections in their handshake, by front worker.",
		    halfopen),
		W64("worker_connections_accepted_total", "counter",
		    "Connections accepted, by front worker.", accepts),
		W64("worker_requests_total", "counter",
		    "Proxy requests, by front worker.", requests),
		W64("worker_requests_success_total", "counter",
		    "Proxy requests that got a tunnel, by front worker.",
		    success),
		W64("worker_uplink_bytes_total", "counter",
		    "Bytes relayed upstream, by front worker.", bytes_up),
		W64("worker_downlink_bytes_total", "counter",
		    "Bytes relayed downstream, by front worker.", bytes_down),
#undef W64
#undef W32
	};

	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		family(d, fams[k].name, fams[k].type, fams[k].help);
		for (unsigned i = 0; i < v->nworkers; i++) {
			const char *p = (const char *)&v->worker[i] +
					fams[k].off;
			uint64_t x;

			if (fams[k].wide) {
				memcpy(&x, p, sizeof(x));
			} else {
				uint32_t y;
				memcpy(&y, p, sizeof(y));
				x = y;
			}
			growbuf_printf(d, "neosocksd_%s{worker=\"%u\"} %llu\n",
				       fams[k].name, v->worker_id[i] + 1,
				       (unsigned long long)x);
		}
	}
	family(d, "worker_cpu_seconds_total", "counter",
	       "CPU seconds, by front worker.");
	for (unsigned i = 0; i < v->nworkers; i++)
		growbuf_printf(d,
			       "neosocksd_worker_cpu_seconds_total{worker=\"%u\"}"
			       " %.17g\n",
			       v->worker_id[i] + 1,
			       (double)v->worker[i].cpu_ns / 1e9);
	family(d, "worker_restarts_total", "counter",
	       "Times a front worker was started again after dying.");
	for (unsigned i = 0;
	     i < v->status.workers && i < CONF_WORKERS_MAX; i++)
		growbuf_printf(d,
			       "neosocksd_worker_restarts_total{worker=\"%u\"} "
			       "%u\n",
			       i + 1, v->status.restarts_worker[i]);
}

void text_metrics(struct growbuf *d, const struct stats_view *v)
{
	const struct msg_stats *f = &v->front;
	static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx",
					       "5xx", "other" };

	metric_ruleset_info(d);

	metric(d, "sessions_active", "gauge", "Sessions relaying.", f->active);
	metric(d, "sessions_peak", "gauge", "Most sessions at once.", f->peak);
	metric(d, "halfopen_connections", "gauge",
	       "Connections still in their handshake.", f->halfopen);
	metric(d, "uptime_seconds", "gauge", "Seconds since start.",
	       v->uptime);
	metric(d, "process_cpu_seconds_total", "counter",
	       "CPU seconds of the front workers and the ruleset process.",
	       (double)v->cpu_ns / 1e9);
	metric(d, "connections_accepted_total", "counter",
	       "Connections accepted.", (double)f->accepts);
	metric(d, "connections_served_total", "counter",
	       "Connections admitted (not dropped by limits).",
	       (double)(f->accepts - f->accept_drops));
	metric(d, "requests_total", "counter", "Proxy requests.",
	       (double)f->requests);
	metric(d, "requests_success_total", "counter",
	       "Proxy requests that got a tunnel.", (double)f->success);
	metric(d, "rejects_ruleset_total", "counter",
	       "Requests the ruleset rejected or failed.",
	       (double)f->reject_ruleset);
	metric(d, "rejects_timeout_total", "counter",
	       "Requests past the handshake deadline.",
	       (double)f->reject_timeout);
	metric(d, "rejects_upstream_total", "counter",
	       "Requests whose dial failed.", (double)f->reject_upstream);
	metric(d, "dns_queries_total", "counter", "Name queries sent.",
	       (double)f->dns_queries);
	metric(d, "dns_success_total", "counter", "Name queries answered.",
	       (double)f->dns_success);
	metric(d, "api_requests_total", "counter", "REST API requests.",
	       (double)v->api.requests);
	metric(d, "api_requests_success_total", "counter",
	       "REST API requests answered 2xx/3xx.", (double)v->api.success);
	metric(d, "uplink_bytes_total", "counter", "Bytes relayed upstream.",
	       (double)f->bytes_up);
	metric(d, "downlink_bytes_total", "counter",
	       "Bytes relayed downstream.", (double)f->bytes_down);
	family(d, "protocol_bytes_total", "counter",
	       "Handshake and API bytes by module and direction.");
	growbuf_printf(
		d,
		"neosocksd_protocol_bytes_total{direction=\"rx\",module="
		"\"api_server\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"tx\",module="
		"\"api_server\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"rx\",module="
		"\"proxy_server\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"tx\",module="
		"\"proxy_server\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"rx\",module="
		"\"proxy_client\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"tx\",module="
		"\"proxy_client\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"rx\",module="
		"\"api_client\"} %llu\n"
		"neosocksd_protocol_bytes_total{direction=\"tx\",module="
		"\"api_client\"} %llu\n",
		(unsigned long long)v->api.rx, (unsigned long long)v->api.tx,
		(unsigned long long)f->hs_rx, (unsigned long long)f->hs_tx,
		(unsigned long long)f->dial_rx, (unsigned long long)f->dial_tx,
		(unsigned long long)v->rpc_rx, (unsigned long long)v->rpc_tx);
	family(d, "udp_datagrams_total", "counter",
	       "SOCKS5 UDP datagrams relayed (up: from clients).");
	growbuf_printf(d,
		       "neosocksd_udp_datagrams_total{direction=\"up\"} %llu\n"
		       "neosocksd_udp_datagrams_total{direction=\"down\"} "
		       "%llu\n",
		       (unsigned long long)f->udp_pkts_up,
		       (unsigned long long)f->udp_pkts_down);
	family(d, "udp_bytes_total", "counter",
	       "SOCKS5 UDP payload bytes relayed (up: from clients).");
	growbuf_printf(d,
		       "neosocksd_udp_bytes_total{direction=\"up\"} %llu\n"
		       "neosocksd_udp_bytes_total{direction=\"down\"} %llu\n",
		       (unsigned long long)f->udp_bytes_up,
		       (unsigned long long)f->udp_bytes_down);
	metric(d, "udp_dropped_total", "counter",
	       "SOCKS5 UDP datagrams dropped (strangers, malformed, refused "
	       "destinations, full buffers).",
	       (double)f->udp_drops);
	metric(d, "udp_associations_active", "gauge",
	       "SOCKS5 UDP associations open.", f->udp_active);
	metric(d, "udp_associations_total", "counter",
	       "SOCKS5 UDP associations made.", (double)f->udp_assocs);
	metric(d, "api_client_requests_total", "counter",
	       "RPC and invoke requests sent to other daemons.",
	       (double)v->rpc_requests);
	if (f->nlat > 0) {
		family(d, "connect_latency_seconds", "summary",
		       "Dial latency, proxies included (last 256).");
		growbuf_printf(
			d,
			"neosocksd_connect_latency_seconds{quantile=\"0.5\"}"
			" %g\n"
			"neosocksd_connect_latency_seconds{quantile=\"0.9\"}"
			" %g\n"
			"neosocksd_connect_latency_seconds{quantile=\"0.99\"}"
			" %g\n"
			"neosocksd_connect_latency_seconds_sum %g\n"
			"neosocksd_connect_latency_seconds_count %llu\n",
			f->lat_p50_us / 1e6, f->lat_p90_us / 1e6,
			f->lat_p99_us / 1e6, (double)f->dial_us_sum / 1e6,
			(unsigned long long)f->dials);
	}
	metric(d, "lua_memory_bytes", "gauge", "Lua heap in use.",
	       (double)v->lua_mem);
	metric(d, "lua_memory_limit_bytes", "gauge", "Lua heap cap.",
	       (double)v->lua_limit);
	metric(d, "lua_objects", "gauge", "Lua heap blocks.",
	       (double)v->lua_objects);
	metric(d, "lua_threads_active", "gauge", "Asynchronous routines.",
	       v->threads);
	metric(d, "lua_threads_peak", "gauge", "Most routines at once.",
	       v->threads_peak);
	/* ours */
	family(d, "process_restarts_total", "counter",
	       "Child processes started again after dying.");
	growbuf_printf(
		d,
		"neosocksd_process_restarts_total{role=\"front\"} %u\n"
		"neosocksd_process_restarts_total{role=\"ruleset\"} %u\n",
		v->status.restarts_front, v->status.restarts_ruleset);
	family(d, "sandbox_layer", "gauge",
	       "1 when the sandbox layer is in place for the role.");
	metric_sandbox(d, "main", v->status.sandbox_parent);
	metric_sandbox(d, "front", f->sandbox);
	metric_sandbox(d, "ruleset", v->sandbox_ruleset);
	family(d, "api_responses_total", "counter",
	       "REST API responses by status class.");
	for (int i = 0; i < 6; i++)
		growbuf_printf(
			d, "neosocksd_api_responses_total{code=\"%s\"} %llu\n",
			classes[i], (unsigned long long)v->api.by_status[i]);
	metric(d, "log_lines_dropped_total", "counter",
	       "Log lines the front dropped because the log was full.",
	       (double)f->log_dropped);
	text_metrics_workers(d, v);
}
