namespace EioSharp.Kv;

// The string fast path of the key table (issue 14): a short string value goes from the command's bytes straight into
// its packed row (one copy, no intermediate array), and GET reads it in place (no copy per lookup).
internal sealed partial class KvDatabase
{
    /// <summary>Adds a new key holding the short string <paramref name="value"/> (at most
    /// <see cref="PackedValueMaxBytes"/> bytes), copied once into the packed row.</summary>
    public KvEntry AddPackedString(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expireAt) =>
        AddItem(key, PackString(key, value), key.Length + value.Length, expireAt);

    /// <summary>Replaces the value of a live key by the short string <paramref name="value"/> (at most
    /// <see cref="PackedValueMaxBytes"/> bytes); as <see cref="Replace"/> with a packable array, without the array.</summary>
    public void ReplacePackedString(KvEntry e, ReadOnlySpan<byte> value)
    {
        ref Row r = ref _rows[e.Row];
        object old = r.Item!;
        DataBytes += value.Length - ValueBytesOf(old);
        if (old is KvKeyedValue dropped) DataBytes -= dropped.Accounted;
        r.Item = PackString(KeySpan(old), value);
        r.Link &= ~(3u << EncodingShift);
    }

    private static byte[] PackString(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        int header = LengthSize(key.Length);
        var packed = new byte[header + key.Length + value.Length];
        WriteLength(packed, key.Length);
        key.CopyTo(packed.AsSpan(header));
        value.CopyTo(packed.AsSpan(header + key.Length));
        return packed;
    }
}

internal sealed partial class KvEntry
{
    /// <summary>Whether the value is a string (without copying a packed one, unlike <see cref="Value"/>).</summary>
    public bool IsString => Item is byte[] || (Item is KvKeyedValue kv && kv.Value is byte[]);

    /// <summary>The string value in place (valid until the key is next written); the entry must hold a string
    /// (<see cref="IsString"/>).</summary>
    public ReadOnlySpan<byte> StringSpan => Item is KvKeyedValue kv ? (byte[])kv.Value : KvDatabase.PackedValue((byte[])Item);
}
