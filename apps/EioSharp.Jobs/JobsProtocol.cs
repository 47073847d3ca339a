using System.Globalization;

namespace EioSharp.Jobs;

/// <summary>One parsed request line.</summary>
/// <param name="Kind">What the line asks for.</param>
/// <param name="Id">The client's tag (id-tagged form), or null for the seed's plain form.</param>
/// <param name="N">The Fibonacci argument (valid only when <see cref="Kind"/> is <see cref="JobsRequestKind.Fib"/>).</param>
/// <param name="Error">Why the line was refused (when <see cref="Kind"/> is <see cref="JobsRequestKind.Invalid"/>).</param>
internal readonly record struct JobsRequest(JobsRequestKind Kind, string? Id, int N, string? Error);

/// <summary>The request kinds.</summary>
internal enum JobsRequestKind
{
    Fib,
    Ping,
    Stats,

    /// <summary><c>STATS RESET</c>: the counters, then the loop-lag window restarts (a benchmark's "before" snapshot).</summary>
    StatsReset,
    Invalid,
}

/// <summary>
/// The line protocol: the seed's <c>&lt;n&gt;</c> → <c>Result: &lt;fib n&gt;</c> (anything else → <c>Error: Invalid number</c>);
/// the id-tagged pipelined form <c>&lt;id&gt; FIB &lt;n&gt;</c> → <c>&lt;id&gt; OK &lt;r&gt;</c> | <c>&lt;id&gt; BUSY</c> | <c>&lt;id&gt; ERR &lt;message&gt;</c>;
/// <c>PING</c> → <c>PONG</c>; <c>STATS</c> → one line of counters (<c>STATS RESET</c> also restarts the loop-lag window).
/// </summary>
internal static class JobsProtocol
{
    /// <summary>Longest request line in bytes (without the newline); a longer line is answered with an error and the connection closed.</summary>
    public const int MaxLineLength = 256;

    /// <summary>Longest client id in characters.</summary>
    public const int MaxIdLength = 64;

    public static JobsRequest Parse(string line)
    {
        var text = line.Trim();
        if (text.Equals("PING", StringComparison.OrdinalIgnoreCase))
        {
            return new JobsRequest(JobsRequestKind.Ping, null, 0, null);
        }

        if (text.Equals("STATS", StringComparison.OrdinalIgnoreCase))
        {
            return new JobsRequest(JobsRequestKind.Stats, null, 0, null);
        }

        if (text.Equals("STATS RESET", StringComparison.OrdinalIgnoreCase))
        {
            return new JobsRequest(JobsRequestKind.StatsReset, null, 0, null);
        }

        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 1)
        {
            return ParseN(null, parts[0]);
        }

        if (parts.Length >= 2 && parts[0].Length <= MaxIdLength && IsIdChars(parts[0]))
        {
            string id = parts[0];
            if (parts.Length == 3 && parts[1].Equals("FIB", StringComparison.OrdinalIgnoreCase))
            {
                return ParseN(id, parts[2]);
            }

            if (parts.Length == 2 && parts[1].Equals("PING", StringComparison.OrdinalIgnoreCase))
            {
                return new JobsRequest(JobsRequestKind.Ping, id, 0, null);
            }

            return new JobsRequest(JobsRequestKind.Invalid, id, 0, "unknown command (expected '<id> FIB <n>')");
        }

        return new JobsRequest(JobsRequestKind.Invalid, null, 0, "Invalid number");
    }

    private static JobsRequest ParseN(string? id, string s)
    {
        if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
        {
            return new JobsRequest(JobsRequestKind.Invalid, id, 0, "Invalid number");
        }

        if (n > Fibonacci.MaxN)
        {
            return new JobsRequest(JobsRequestKind.Invalid, id, 0, $"n must be at most {Fibonacci.MaxN} (fib {Fibonacci.MaxN + 1} does not fit in 64 bits)");
        }

        return new JobsRequest(JobsRequestKind.Fib, id, n, null);
    }

    private static bool IsIdChars(string s)
    {
        foreach (char c in s)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
            {
                return false;
            }
        }

        return true;
    }

    public static string Ok(JobsRequest r, long value) =>
        r.Id is null ? $"Result: {value.ToString(CultureInfo.InvariantCulture)}\n" : $"{r.Id} OK {value.ToString(CultureInfo.InvariantCulture)}\n";

    public static string Busy(JobsRequest r) => r.Id is null ? "Error: Busy\n" : $"{r.Id} BUSY\n";

    /// <summary>An error reply: the seed's form always says <c>Error: Invalid number</c> (its clients match on it); the tagged form says why.</summary>
    public static string Fail(JobsRequest r, string message) =>
        r.Id is null ? "Error: Invalid number\n" : $"{r.Id} ERR {message}\n";
}
