using System.Text;

namespace EioSharp;

/// <summary>Debug tracing that is safe from any fiber and domain, and redirectable per fiber (for transcript tests).</summary>
/// <remarks>
/// Eio: <c>traceln</c>. A line written on a domain other than the main one (the one <c>EioMain.Run</c> made) is prefixed with the domain's name in brackets.
/// Under the mock backend lines start with <c>+</c>, as in Eio's mock transcripts.
/// <para><b>Thread safety</b>: lines are written whole; concurrent writers never interleave within a line.</para>
/// </remarks>
public static class TraceLog
{
    private static readonly AsyncLocal<TextWriter?> s_writer = new();
    private static readonly object s_lock = new();
    private static TextWriter s_default = Console.Error;

    /// <summary>Where lines go when no fiber-level redirection applies (default: standard error).</summary>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public static TextWriter DefaultWriter
    {
        get => s_default;
        set => s_default = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Writes one trace line.</summary>
    /// <param name="message">The text (may contain newlines; each line gets the prefix).</param>
    public static void Line(string message)
    {
        var domain = Domain.Current;
        string prefix = domain is null ? "[thread] " : domain.Poller.TraceLinePrefix is { } p ? p : domain.IsMain ? string.Empty : $"[{domain.Name}] ";
        var w = s_writer.Value ?? s_default;
        var sb = new StringBuilder();
        foreach (var line in message.Split('\n'))
        {
            sb.Append(prefix).Append(line).Append('\n');
        }

        lock (s_lock)
        {
            w.Write(sb.ToString());
            w.Flush();
        }
    }

    /// <summary>Runs <paramref name="body"/> with trace lines from it (and fibers it forks) going to <paramref name="writer"/>.</summary>
    /// <param name="writer">The destination.</param>
    /// <param name="body">The code.</param>
    /// <returns>A task that completes when the body does.</returns>
    public static async Task WithWriterAsync(TextWriter writer, Func<Task> body)
    {
        s_writer.Value = writer;
        await body();
    }

    internal static void SetWriterForCurrentFlow(TextWriter? writer) => s_writer.Value = writer;
}
