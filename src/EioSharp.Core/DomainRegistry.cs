using System.Diagnostics.Metrics;

namespace EioSharp;

/// <summary>The live domains of the process, scanned by the watchdog and the metrics.</summary>
/// <remarks>A domain registers itself when its scheduler loop starts and unregisters when it ends. Thread-safe.</remarks>
internal static class DomainRegistry
{
    private static readonly object s_lock = new();
    private static Domain[] s_domains = [];

    /// <summary>The live domains now (a snapshot; never modified after it is returned).</summary>
    public static Domain[] Snapshot => Volatile.Read(ref s_domains);

    public static void Register(Domain d)
    {
        DomainMetrics.EnsureCreated();
        lock (s_lock)
        {
            var next = new Domain[s_domains.Length + 1];
            s_domains.CopyTo(next, 0);
            next[^1] = d;
            Volatile.Write(ref s_domains, next);
        }
    }

    public static void Unregister(Domain d)
    {
        lock (s_lock)
        {
            int i = Array.IndexOf(s_domains, d);
            if (i < 0)
            {
                return;
            }

            var next = new Domain[s_domains.Length - 1];
            Array.Copy(s_domains, 0, next, 0, i);
            Array.Copy(s_domains, i + 1, next, i, s_domains.Length - i - 1);
            Volatile.Write(ref s_domains, next);
        }
    }
}

/// <summary>Per-domain counters published through <see cref="System.Diagnostics.Metrics"/> (meter <c>EioSharp</c>).</summary>
/// <remarks>
/// All instruments are observable: they read the counters each domain keeps anyway when a listener (dotnet-counters,
/// OpenTelemetry) collects, so they cost nothing on the scheduler's hot path. Each measurement carries a <c>domain</c> tag
/// (the domain's name) except <c>eiosharp.domains.live</c>.
/// </remarks>
internal static class DomainMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "EioSharp";

    private static Meter? s_meter;

    public static void EnsureCreated()
    {
        if (Volatile.Read(ref s_meter) is not null)
        {
            return;
        }

        var meter = new Meter(MeterName);
        if (Interlocked.CompareExchange(ref s_meter, meter, null) is not null)
        {
            meter.Dispose();
            return;
        }

        meter.CreateObservableGauge(
            "eiosharp.domain.run_queue_length",
            static () => Each(static d => d.RunQueueLength),
            unit: "{item}",
            description: "Work items waiting in each domain's run queue.");
        meter.CreateObservableCounter(
            "eiosharp.domain.busy_time",
            static () => Each(static d => d.BusyTime.TotalSeconds),
            unit: "s",
            description: "Time each domain spent running work items (not waiting for events).");
        meter.CreateObservableCounter(
            "eiosharp.domain.work_items",
            static () => Each(static d => d.WorkItemsRun),
            unit: "{item}",
            description: "Work items each domain has run.");
        meter.CreateObservableCounter(
            "eiosharp.domain.idle_waits",
            static () => Each(static d => d.IdleWaits),
            unit: "{wait}",
            description: "Times each domain found nothing to run and waited in its poller (its idle transitions).");
        meter.CreateObservableUpDownCounter(
            "eiosharp.domains.live",
            static () => DomainRegistry.Snapshot.Length,
            unit: "{domain}",
            description: "Domains whose scheduler is running.");
    }

    private static IEnumerable<Measurement<T>> Each<T>(Func<Domain, T> read)
        where T : struct
    {
        var all = DomainRegistry.Snapshot;
        var result = new Measurement<T>[all.Length];
        for (int i = 0; i < all.Length; i++)
        {
            result[i] = new Measurement<T>(read(all[i]), new KeyValuePair<string, object?>("domain", all[i].Name));
        }

        return result;
    }
}
