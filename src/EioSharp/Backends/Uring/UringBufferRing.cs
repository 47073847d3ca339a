using System.Runtime.InteropServices;

namespace EioSharp.Backends.Uring;

/// <summary>
/// A provided-buffer ring (IORING_REGISTER_PBUF_RING, kernel 5.19+) of one domain's ring: <see cref="Entries"/> buffers of
/// <see cref="BufferSize"/> bytes in native memory that the kernel picks from for receives with IOSQE_BUFFER_SELECT
/// (multishot recv: <see cref="UringMultishotRecv"/>). A completion names the buffer it filled (its id in the CQE's flags);
/// the reader copies the bytes out and gives the buffer back (<see cref="Return"/>) once consumed.
/// </summary>
/// <remarks>
/// Touched only by its domain's thread (the kernel reads the entries, the domain alone writes them and the tail). Freed
/// after the ring's fd is closed (<see cref="Free"/>), when the kernel can no longer write into the buffers. When the ring
/// runs dry, the kernel ends the multishot request with -ENOBUFS and the reader falls back to one one-shot recv.
/// </remarks>
internal sealed unsafe class UringBufferRing
{
    /// <summary>Buffers in the ring (a power of two).</summary>
    internal const int Entries = 256;

    /// <summary>Bytes per buffer.</summary>
    internal const int BufferSize = 4096;

    /// <summary>The buffer group id used in the SQEs (one group per ring).</summary>
    internal const ushort GroupId = 0;

    private const int EntrySize = 16; // struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv; }; resv of entry 0 is the tail
    private readonly byte* _entries;
    private readonly byte* _data;
    private ushort _tail;
    private int _out; // buffers filled by the kernel (named by a completion) and not given back yet
    private bool _orphaned; // the ring is closed with buffers still queued at readers: freed when the last comes back

    private UringBufferRing(byte* entries, byte* data)
    {
        _entries = entries;
        _data = data;
    }

    /// <summary>Buffers filled by the kernel and not given back yet (queued at readers): tests.</summary>
    internal int Outstanding => _out;

    /// <summary>Registers a buffer ring with <paramref name="ringFd"/>, or returns null with the reason (a kernel without
    /// PBUF_RING answers EINVAL: feature detection, as the opcode probe cannot tell).</summary>
    public static UringBufferRing? TryRegister(int ringFd, out string? error)
    {
        nint entriesSize = Entries * EntrySize;
        byte* entries = (byte*)NativeMemory.AlignedAlloc((nuint)entriesSize, 4096);
        byte* data = (byte*)NativeMemory.AlignedAlloc((nuint)(Entries * BufferSize), 4096);
        new Span<byte>(entries, (int)entriesSize).Clear();
        var reg = new IoUringBufReg { RingAddr = (ulong)entries, RingEntries = Entries, Bgid = GroupId };
        if (Sys.syscall(Sys.SYS_io_uring_register, ringFd, Sys.IORING_REGISTER_PBUF_RING, (nint)(&reg), 1, 0, 0) < 0)
        {
            error = $"IORING_REGISTER_PBUF_RING failed (errno {Marshal.GetLastPInvokeError()})";
            NativeMemory.AlignedFree(entries);
            NativeMemory.AlignedFree(data);
            return null;
        }

        var ring = new UringBufferRing(entries, data) { _out = Entries };
        for (int i = 0; i < Entries; i++)
        {
            ring.Return((ushort)i);
        }

        error = null;
        return ring;
    }

    /// <summary>The first byte of buffer <paramref name="bid"/>.</summary>
    public byte* Buffer(ushort bid) => _data + (bid * BufferSize);

    /// <summary>Gives buffer <paramref name="bid"/> back to the kernel (domain thread only).</summary>
    public void Return(ushort bid)
    {
        byte* e = _entries + ((_tail & (Entries - 1)) * EntrySize);
        *(ulong*)e = (ulong)Buffer(bid);
        *(uint*)(e + 8) = BufferSize;
        *(ushort*)(e + 12) = bid; // not the whole entry: entry 0's last field is the tail
        _tail++;
        Volatile.Write(ref *(ushort*)(_entries + 14), _tail);
        _out--;
        if (_orphaned && _out == 0)
        {
            FreeMemory();
        }
    }

    /// <summary>The kernel filled a buffer (a completion named it): it is out of the ring until <see cref="Return"/>.</summary>
    public void Taken() => _out++;

    /// <summary>The ring's fd is closed (the kernel no longer writes into the buffers): frees the memory now, or, when
    /// readers still hold buffers (data received and not yet read), when the last of them comes back.</summary>
    public void Free()
    {
        if (_out == 0)
        {
            FreeMemory();
        }
        else
        {
            _orphaned = true;
        }
    }

    private void FreeMemory()
    {
        NativeMemory.AlignedFree(_entries);
        NativeMemory.AlignedFree(_data);
    }
}

[StructLayout(LayoutKind.Sequential)]
internal struct IoUringBufReg
{
    public ulong RingAddr;
    public uint RingEntries;
    public ushort Bgid;
    public ushort Flags;
    public ulong Resv0, Resv1, Resv2;
}
