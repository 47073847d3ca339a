namespace EioSharp;

/// <summary>Settings for <see cref="EioMain"/>: which backend runs the program and whether it is traced.</summary>
/// <remarks>
/// Eio: the choice <c>Eio_main.run</c> makes between <c>Eio_linux</c>, <c>Eio_posix</c> and friends, made here by value
/// instead of by linking. A null <see cref="EioOptions"/> means the defaults.
/// </remarks>
public sealed class EioOptions
{
    /// <summary>The backend name: <c>null</c> picks the default (see <see cref="EioMain"/>).</summary>
    public string? Backend { get; init; }

    /// <summary>When not null, tracing starts before the main fiber and the trace is written to this file (Chrome/Perfetto JSON) when it returns.</summary>
    public string? TraceFile { get; init; }
}
