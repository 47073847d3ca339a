namespace EioSharp.StatsdFilter;

/// <summary>Packs kept StatsD lines into datagrams no larger than the MTU.</summary>
/// <remarks>
/// <para>
/// Lines are copied byte for byte and separated by a single <c>\n</c>; a datagram has no trailing
/// newline. A batch never exceeds <see cref="Mtu"/> bytes, except that a single line longer than the
/// MTU is accepted into an empty batch and sent alone (it is still forwarded; the network may
/// fragment it).
/// </para>
/// <para>Usage by the forwarding loop:</para>
/// <code>
/// if (!batcher.TryAppend(line))
/// {
///     await SendAsync(batcher.Flush());   // the batch is full
///     batcher.TryAppend(line);            // always succeeds on an empty batch
/// }
/// // ... after the last line of a receive, or on a timer:
/// if (!batcher.IsEmpty) await SendAsync(batcher.Flush());
/// </code>
/// <para>
/// <b>Lifetime</b>: the memory returned by <see cref="Flush"/> stays valid until the next
/// <see cref="TryAppend"/>. The buffer is allocated once at <see cref="Mtu"/> bytes and grows only
/// to hold a single line longer than that; appending allocates nothing.
/// </para>
/// <para><b>Thread safety</b>: not thread-safe; use one batcher per sending fiber.</para>
/// </remarks>
public sealed class DatagramBatcher
{
    /// <summary>The default MTU, in bytes: a 1500-byte Ethernet frame minus IP/UDP headers, with margin (the DogStatsD client default).</summary>
    public const int DefaultMtu = 1432;

    /// <summary>The largest UDP payload over IPv4, in bytes.</summary>
    public const int MaxUdpPayload = 65507;

    private byte[] _buffer;
    private int _length;
    private bool _flushed;

    /// <summary>Creates a batcher.</summary>
    /// <param name="mtu">The maximum datagram payload in bytes, from 1 to <see cref="MaxUdpPayload"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mtu"/> is out of range.</exception>
    public DatagramBatcher(int mtu = DefaultMtu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mtu, MaxUdpPayload);
        Mtu = mtu;
        _buffer = new byte[mtu];
    }

    /// <summary>The maximum datagram payload, in bytes.</summary>
    public int Mtu { get; }

    /// <summary>The bytes pending in the current batch.</summary>
    public int Length => _flushed ? 0 : _length;

    /// <summary>The number of lines in the current batch.</summary>
    public int LineCount { get; private set; }

    /// <summary>Whether the current batch is empty.</summary>
    public bool IsEmpty => LineCount == 0;

    /// <summary>Appends a line to the current batch if it fits.</summary>
    /// <param name="line">One line without newline; an empty line is ignored.</param>
    /// <returns>
    /// <see langword="true"/> if the line was appended (always, when the batch is empty);
    /// <see langword="false"/> if the batch must be flushed first.
    /// </returns>
    public bool TryAppend(ReadOnlySpan<byte> line)
    {
        if (_flushed)
        {
            _length = 0;
            _flushed = false;
        }

        if (line.IsEmpty)
        {
            return true;
        }

        if (LineCount == 0)
        {
            if (line.Length > _buffer.Length)
            {
                _buffer = new byte[line.Length];
            }

            line.CopyTo(_buffer);
            _length = line.Length;
            LineCount = 1;
            return true;
        }

        if ((long)_length + 1 + line.Length > Mtu)
        {
            return false;
        }

        _buffer[_length] = (byte)'\n';
        line.CopyTo(_buffer.AsSpan(_length + 1));
        _length += 1 + line.Length;
        LineCount++;
        return true;
    }

    /// <summary>Ends the current batch and returns it.</summary>
    /// <returns>The datagram payload (empty if no line is pending); valid until the next <see cref="TryAppend"/>.</returns>
    public ReadOnlyMemory<byte> Flush()
    {
        if (_flushed || LineCount == 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        LineCount = 0;
        _flushed = true;
        return _buffer.AsMemory(0, _length);
    }
}
