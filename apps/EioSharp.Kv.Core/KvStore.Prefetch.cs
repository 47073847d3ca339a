using System.Runtime.Intrinsics.X86;

namespace EioSharp.Kv;

// Group prefetching of a pipelined batch's keys (issue 14, h146; KvDatabase.Prefetch.cs says how).
public sealed partial class KvStore
{
    /// <summary>The most commands of a batch whose keys <see cref="PrefetchKeys"/> prefetches at once.</summary>
    public const int PrefetchGroup = 16;

    /// <summary>Whether <see cref="PrefetchKeys"/> does anything (tests and benchmarks compare; the server's
    /// <c>EIOSHARP_KV_PREFETCH=0</c> sets it false). Default true; without the x86 prefetch instructions
    /// (<see cref="Sse.IsSupported"/> false) it has no effect.</summary>
    public static bool PrefetchEnabled { get; set; } = true;

    /// <summary>Prefetches the rows of the first key of each of the first <see cref="PrefetchGroup"/> commands of
    /// <paramref name="commands"/> (a connection's pipelined batch, about to run in order through
    /// <see cref="ExecuteBatch(KvSession, ReadOnlySpan{KvCommand}, long, RespWriter, IAofSink)"/>) in the session's
    /// database, level by level: the buckets of all, then their first rows, then the rows' items, then the items' key
    /// and value arrays, so the cache misses of the batch's lookups overlap (four waits for the group instead of four per
    /// command). Does nothing for fewer than two commands.</summary>
    /// <remarks>A hint only: it changes nothing in the store, its reply or its statistics (no access is recorded, no key
    /// expires), and a command that turns out not to use the key (MULTI queued, SELECT before it) only wasted the
    /// prefetch. <b>Thread safety</b>: the store owner's thread, as <see cref="Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/>.</remarks>
    /// <param name="session">The connection's state (its selected database).</param>
    /// <param name="commands">The batch's commands still to run, in order.</param>
    public void PrefetchKeys(KvSession session, ReadOnlySpan<KvCommand> commands)
    {
        if (commands.Length < 2 || !Sse.IsSupported || !PrefetchEnabled || (uint)session.Db >= (uint)_dbs.Length) return;
        KvDatabase db = _dbs[session.Db];
        Span<int> hashes = stackalloc int[PrefetchGroup];
        int count = 0;
        foreach (KvCommand command in commands[..Math.Min(commands.Length, PrefetchGroup)])
        {
            if (command.Count >= 2 && command.Info is { FirstKey: 1 })
            {
                int hash = ByteArrayComparer.Instance.GetHashCode(command[1]);
                command.SetKeyHash(hash); // the command's own lookup of the key takes it (RowOfKey: one hash a command, §221)
                hashes[count++] = hash;
            }
        }
        if (count < 2) return;
        hashes = hashes[..count];
        foreach (int hash in hashes) db.PrefetchBucket(hash);
        foreach (int hash in hashes) db.PrefetchRow(hash);
        foreach (int hash in hashes) db.PrefetchItem(hash);
        foreach (int hash in hashes) db.PrefetchItemData(hash);
    }
}
