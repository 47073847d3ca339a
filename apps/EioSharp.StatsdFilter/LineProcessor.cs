using System.Text;

namespace EioSharp.StatsdFilter;

/// <summary>Validates, filters and counts StatsD lines, appending the kept ones byte for byte to the domain's sender.</summary>
/// <remarks>
/// <para>
/// Counts are kept in plain fields and added to the shared <see cref="FilterStatistics"/> by <see cref="Publish"/>,
/// once per datagram or TCP read rather than once per line.
/// </para>
/// <para>
/// <b>Debug commands</b>: with <paramref name="debugCommand"/> set (<c>--enable-debug-commands</c>), a line whose name
/// starts with <c>_debug.</c> is not a metric: its name goes to <paramref name="debugCommand"/> and it is neither
/// forwarded nor counted. Without it such lines are ordinary metrics.
/// </para>
/// <para><b>Thread safety</b>: not thread-safe; one per domain, used only from fibers of that domain.</para>
/// </remarks>
internal sealed class LineProcessor(
    UpstreamSender sender, FilterRules rules, FilterStatistics statistics, int shard, bool verbose, Action<string>? debugCommand = null)
{
    private static ReadOnlySpan<byte> DebugPrefix => "_debug."u8;

    private long _received;
    private long _blocked;
    private long _regexTimeouts;
    private long _malformed;
    private long _truncated;

    public UpstreamSender Sender => sender;

    /// <summary>Handles one UDP datagram payload (one or more lines).</summary>
    /// <param name="payload">The received bytes.</param>
    /// <param name="truncated">Whether the socket filled the whole receive buffer (the datagram may have been cut).</param>
    public void ProcessDatagram(ReadOnlySpan<byte> payload, bool truncated)
    {
        if (truncated)
        {
            // The last line may be cut: forwarding it would corrupt a metric, so drop the whole datagram.
            _truncated++;
            Trace("truncated", payload[..Math.Min(payload.Length, 64)]);
        }
        else
        {
            foreach (ReadOnlySpan<byte> line in StatsdLineSplitter.SplitDatagram(payload))
            {
                ProcessLine(line);
            }
        }

        Publish();
    }

    /// <summary>Handles one line (without its newline); call <see cref="Publish"/> afterwards.</summary>
    public void ProcessLine(ReadOnlySpan<byte> line)
    {
        if (debugCommand is not null && line.StartsWith(DebugPrefix))
        {
            int colon = line.IndexOf((byte)':');
            debugCommand(Encoding.UTF8.GetString(colon < 0 ? line : line[..colon]));
            return;
        }

        _received++;
        if (!StatsdLine.TryParse(line, out StatsdLineInfo info))
        {
            _malformed++;
            Trace("malformed", line);
            return;
        }

        if (rules.ShouldDrop(info, out bool regexTimedOut))
        {
            _blocked++;
            if (regexTimedOut)
            {
                _regexTimeouts++;
            }

            Trace("blocked", line);
            return;
        }

        Trace("forward", line);
        sender.Append(line);
    }

    /// <summary>Counts over-long TCP lines.</summary>
    public void AddTruncated(long count) => _truncated += count;

    /// <summary>Adds the counts gathered since the last call to the shared statistics.</summary>
    public void Publish()
    {
        if (_received != 0)
        {
            statistics.Add(FilterCounter.Received, _received, shard);
            _received = 0;
        }

        if (_blocked != 0)
        {
            statistics.Add(FilterCounter.DroppedBlocked, _blocked, shard);
            _blocked = 0;
        }

        if (_regexTimeouts != 0)
        {
            statistics.Add(FilterCounter.RegexTimeouts, _regexTimeouts, shard);
            _regexTimeouts = 0;
        }

        if (_malformed != 0)
        {
            statistics.Add(FilterCounter.DroppedMalformed, _malformed, shard);
            _malformed = 0;
        }

        if (_truncated != 0)
        {
            statistics.Add(FilterCounter.Truncated, _truncated, shard);
            _truncated = 0;
        }
    }

    private void Trace(string verdict, ReadOnlySpan<byte> line)
    {
        if (verbose)
        {
            // The seed's per-request trace; TraceLog prefixes lines from non-main domains with the domain's name.
            TraceLog.Line($"{verdict}: {Encoding.UTF8.GetString(line)}");
        }
    }
}
