namespace EioSharp.Kv;

// The string fast path of the key table (issue 14): a string value goes from the command's bytes straight into its
// packed row or its own array (one copy, no intermediate array), GET reads it in place (no copy per lookup), and a
// plain SET of a value of the same length overwrites the bytes in place when nothing else can see them (no allocation).
internal sealed partial class KvDatabase
{
    /// <summary>The row holding <paramref name="key"/> (live or expired), or -1: a lookup without a <see cref="KvEntry"/>
    /// handle, for the string fast path.</summary>
    internal int RowOf(ReadOnlySpan<byte> key) => FindRow(key, Hash(key));

    /// <summary>As <see cref="RowOf(ReadOnlySpan{byte})"/>, with the key's hash already computed (it must be
    /// <see cref="ByteArrayComparer"/>'s: the prefetch's, handed over by the command, §221).</summary>
    internal int RowOf(ReadOnlySpan<byte> key, int hash) => FindRow(key, hash);

    /// <summary>Clears the expiry of the key in <paramref name="row"/> (SET without KEEPTTL), as <see cref="SetExpire"/> with -1.</summary>
    internal void ClearExpireRow(int row) => SetExpireRow(row, -1);

    /// <summary>Sets the expiry of the key in <paramref name="row"/> (-1: none), as <see cref="SetExpire"/> does through a
    /// handle (EXPIRE by row, issue 14).</summary>
    internal void SetExpireAtRow(int row, long expireAt) => SetExpireRow(row, expireAt);

    /// <summary>Adds a new key holding the short string <paramref name="value"/> (at most
    /// <see cref="PackedValueMaxBytes"/> bytes), copied once into the packed row.</summary>
    public KvEntry AddPackedString(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expireAt)
    {
        byte[] page = WriteRecord(key, value, out int pos);
        return AddItem(key, page, pos, key.Length + value.Length, expireAt);
    }

    /// <summary>Replaces the value of a live key by the short string <paramref name="value"/> (at most
    /// <see cref="PackedValueMaxBytes"/> bytes); as <see cref="Replace"/> with a packable array, without the array.</summary>
    /// <remarks>When the key already holds a packed string of the same length, the value bytes are overwritten in place
    /// (no allocation). That is safe because a packed row's array never leaves the database: <see cref="KvEntry.Value"/>
    /// and <see cref="KvEntry.Key"/> hand out copies, snapshots hold those copies, and spans over it
    /// (<see cref="KvEntry.StringSpan"/>, <see cref="KeySpan"/>) are read within the command. The copy
    /// <paramref name="e"/> may have cached is dropped; the caller must not read the value through another handle on this
    /// key taken before this call.</remarks>
    public void ReplacePackedString(KvEntry e, ReadOnlySpan<byte> value)
    {
        ReplacePackedStringRow(e.Row, value);
        e.ForgetValueCopy();
    }

    /// <summary><see cref="ReplacePackedString"/> by row, for a caller that holds no handle on the key (SET's plain
    /// path: no <see cref="KvEntry"/> per request); <paramref name="row"/> holds a live key.</summary>
    internal void ReplacePackedStringRow(int row, ReadOnlySpan<byte> value)
    {
        ref Row r = ref _rows[row];
        object old = r.Item!;
        int oldPos = r.Pos;
        if (old is byte[] packed)
        {
            Span<byte> current = PackedValueBytes(packed, oldPos);
            if (current.Length == value.Length)
            {
                value.CopyTo(current);
                r.Link &= ~(3u << EncodingShift);
                InPlaceStringWrites++;
                return;
            }
        }
        DataBytes += value.Length - ValueBytesOf(old, oldPos);
        if (old is KvKeyedValue dropped) DataBytes -= dropped.Accounted;
        r.Item = WriteRecord(KeySpan(old, oldPos), value, out r.Pos);
        DropRecord(old, oldPos);
        r.Link &= ~(3u << EncodingShift);
    }

    /// <summary>Replaces the value of a live key by the string <paramref name="value"/>, longer than
    /// <see cref="PackedValueMaxBytes"/> bytes, copied once from the span (SET's path for a value received in the
    /// command's buffer).</summary>
    /// <remarks>The array the value lands in belongs to the row alone (<see cref="KvKeyedValue.OwnsString"/>) until a
    /// reference to it is handed out (<see cref="KvEntry.Value"/>: GET's copy-free path reads
    /// <see cref="KvEntry.StringSpan"/> instead). While it does, a later value of the same length overwrites it in place:
    /// no new array replaces an old one among the long-lived data (the garbage collector's costliest case). Once the
    /// array was handed out (a snapshot for BGSAVE or an AOF rewrite, DUMP, COPY, a script, SET ... GET's old value, a
    /// deferred AOF command), the next write allocates a new array, so the holder keeps seeing the old bytes. A leased
    /// snapshot (<see cref="KvStore.CreateSnapshotLease"/>: BGSAVE, the AOF rewrite) only marks the array with its epoch:
    /// the array is left alone while that snapshot (or a later one) runs, and is overwritten in place again once they
    /// ended (<see cref="KvSnapshotEpochs"/>); a same-length write meanwhile moves the row to an array recycled from an
    /// earlier such write when one is free (<see cref="KvCopyOnWriteArrays"/>) and leaves the old one to be recycled.</remarks>
    public void ReplaceLongString(KvEntry e, ReadOnlySpan<byte> value) => ReplaceLongStringRow(e.Row, value);

    /// <summary><see cref="ReplaceLongString"/> by row, for a caller that holds no handle on the key (SET's plain path
    /// with a value longer than <see cref="PackedValueMaxBytes"/>: no <see cref="KvEntry"/> per request, ~86 B of a 1 KB
    /// SET's); <paramref name="row"/> holds a live key.</summary>
    internal void ReplaceLongStringRow(int row, ReadOnlySpan<byte> value)
    {
        ref Row r = ref _rows[row];
        object old = r.Item!;
        if (old is KvKeyedValue { OwnsString: true, Value: byte[] owned } same && owned.Length == value.Length)
        {
            if (Epochs.MayOverwrite(same.SnapshotEpoch, same.SnapshotIndex))
            {
                same.ResetSnapshotMark(); // before the bytes change: a late proof of the old bytes cannot land (h140)
                value.CopyTo(owned);
                InPlaceStringWrites++;
            }
            else
            {
                // A running snapshot's writer has not passed this array yet: the row takes another of the same length
                // (recycled from an earlier copy-on-write when one is free) and leaves this one to the snapshot, to be
                // recycled once the writer is done with it (KvCopyOnWriteArrays). Same length: DataBytes is unchanged.
                byte[] fresh = Epochs.CopyOnWrite.Rent(value.Length);
                value.CopyTo(fresh);
                Epochs.CopyOnWrite.Retire(owned, same.SnapshotEpoch, same.SnapshotIndex);
                same.SetValue(fresh, ownsString: true);
            }
        }
        else if (old is KvKeyedValue kv)
        {
            DataBytes += value.Length - ValueBytes(kv.Value);
            kv.SetValue(value.ToArray(), ownsString: true);
            DataBytes += kv.Reaccount(); // drops a collection's account (SET overwrites any type)
        }
        else
        {
            DataBytes += value.Length - ValueBytesOf(old, r.Pos);
            r.Item = new KvKeyedValue(KeySpan(old, r.Pos).ToArray(), value.ToArray()) { OwnsString = true };
            DropRecord(old, r.Pos);
            r.Pos = 0;
        }
        r.Link &= ~(3u << EncodingShift);
    }

    /// <summary>Adds a new key holding the string <paramref name="value"/>, longer than <see cref="PackedValueMaxBytes"/>
    /// bytes, in an array of the row's own (see <see cref="ReplaceLongString"/>).</summary>
    public KvEntry AddLongString(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expireAt) =>
        AddItem(key, new KvKeyedValue(key.ToArray(), value.ToArray()) { OwnsString = true }, 0, key.Length + value.Length, expireAt);

    /// <summary>String values overwritten in place since the database was created (tests, DEBUG).</summary>
    public long InPlaceStringWrites { get; private set; }

}

internal sealed partial class KvEntry
{
    /// <summary>Whether the value is a string (without copying a packed one, unlike <see cref="Value"/>).</summary>
    public bool IsString => Item is byte[] || (Item is KvKeyedValue kv && kv.Value is byte[]);

    /// <summary>The string value in place (valid until the key is next written: read it within the command, never keep
    /// it); the entry must hold a string (<see cref="IsString"/>). Unlike <see cref="Value"/> it hands out no reference,
    /// so the row may still overwrite the bytes in place later.</summary>
    public ReadOnlySpan<byte> StringSpan => Item is KvKeyedValue kv ? (byte[])kv.Value : KvDatabase.PackedValue((byte[])Item, Pos);
}
