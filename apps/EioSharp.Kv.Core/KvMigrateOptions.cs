using System.Buffers;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>MIGRATE's arguments (<c>MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key ...]</c>), parsed as Redis 7.0's migrateCommand parses them; shared by the
/// fiber path (the server's <c>KvMigrate</c>) and the blocking path inside EXEC and scripts
/// (<see cref="KvStore"/>'s MigrateBlocking).</summary>
/// <param name="Copy">COPY: the keys stay here.</param>
/// <param name="Replace">REPLACE: RESTORE overwrites an existing key on the target.</param>
/// <param name="User">AUTH2's user name (null: none).</param>
/// <param name="Password">AUTH's or AUTH2's password (null: no AUTH is sent).</param>
/// <param name="Db">The target database.</param>
/// <param name="TimeoutMs">The timeout in milliseconds (a given value of 0 or less becomes 1000, as in Redis).</param>
/// <param name="Keys">The keys to move (the key argument, or those after KEYS).</param>
public sealed record KvMigrateOptions(bool Copy, bool Replace, byte[]? User, byte[]? Password, long Db, long TimeoutMs, IReadOnlyList<byte[]> Keys)
{
    /// <summary>The timeout as a span (at most <see cref="int.MaxValue"/> milliseconds).</summary>
    public TimeSpan Timeout => TimeSpan.FromMilliseconds(Math.Min(TimeoutMs, int.MaxValue));

    /// <summary>Parses MIGRATE's arguments (the arity is already checked: at least 6).</summary>
    /// <param name="command">The MIGRATE command.</param>
    /// <param name="error">Redis's error text when the arguments are wrong (syntax error, KEYS with a non-empty key
    /// argument, a timeout or database that is not an integer); null otherwise.</param>
    /// <returns>The options, or null with <paramref name="error"/> set.</returns>
    public static KvMigrateOptions? Parse(KvCommand command, out string? error)
    {
        ArgumentNullException.ThrowIfNull(command);
        error = null;
        bool copy = false, replace = false;
        byte[]? user = null, password = null;
        int firstKey = 3, keyCount = 1;
        for (int j = 6; j < command.Count; j++)
        {
            int more = command.Count - 1 - j;
            ReadOnlySpan<byte> option = command[j];
            if (Ascii.EqualsIgnoreCase(option, "COPY"u8)) copy = true;
            else if (Ascii.EqualsIgnoreCase(option, "REPLACE"u8)) replace = true;
            else if (Ascii.EqualsIgnoreCase(option, "AUTH"u8))
            {
                if (more < 1)
                {
                    error = KvErrors.Syntax;
                    return null;
                }
                password = command.ToArray(++j);
            }
            else if (Ascii.EqualsIgnoreCase(option, "AUTH2"u8))
            {
                if (more < 2)
                {
                    error = KvErrors.Syntax;
                    return null;
                }
                user = command.ToArray(++j);
                password = command.ToArray(++j);
            }
            else if (Ascii.EqualsIgnoreCase(option, "KEYS"u8))
            {
                if (command[3].Length != 0)
                {
                    error = "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
                    return null;
                }
                firstKey = j + 1;
                keyCount = command.Count - j - 1;
                break;
            }
            else
            {
                error = KvErrors.Syntax;
                return null;
            }
        }
        if (!RespNumbers.TryParseInt64(command[5], out long timeoutMs) || !RespNumbers.TryParseInt64(command[4], out long db))
        {
            error = KvErrors.NotInteger;
            return null;
        }
        if (timeoutMs <= 0) timeoutMs = 1000;
        var keys = new List<byte[]>(keyCount);
        for (int i = 0; i < keyCount; i++) keys.Add(command.ToArray(firstKey + i));
        return new KvMigrateOptions(copy, replace, user, password, db, timeoutMs, keys);
    }

    /// <summary>What is sent to the target: AUTH (if a password was given), SELECT, then one
    /// <c>RESTORE key ttl payload [REPLACE]</c> per item, as one RESP buffer.</summary>
    /// <param name="items">The keys' payloads (<see cref="KvStore.MigrateSnapshot"/>).</param>
    /// <returns>The request bytes.</returns>
    public byte[] BuildRequest(IReadOnlyList<KvMigrateItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var buffer = new ArrayBufferWriter<byte>(256 + items.Sum(i => i.Key.Length + i.Payload.Length + 64));
        void Command(params byte[][] args)
        {
            buffer.Write(Encoding.ASCII.GetBytes("*" + args.Length.ToString(CultureInfo.InvariantCulture) + "\r\n"));
            foreach (byte[] a in args)
            {
                buffer.Write(Encoding.ASCII.GetBytes("$" + a.Length.ToString(CultureInfo.InvariantCulture) + "\r\n"));
                buffer.Write(a);
                buffer.Write("\r\n"u8);
            }
        }
        static byte[] Number(long value) => Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture));
        if (Password is not null)
        {
            if (User is not null) Command("AUTH"u8.ToArray(), User, Password);
            else Command("AUTH"u8.ToArray(), Password);
        }
        Command("SELECT"u8.ToArray(), Number(Db));
        foreach (KvMigrateItem item in items)
        {
            if (Replace) Command("RESTORE"u8.ToArray(), item.Key, Number(item.TtlMs), item.Payload, "REPLACE"u8.ToArray());
            else Command("RESTORE"u8.ToArray(), item.Key, Number(item.TtlMs), item.Payload);
        }
        return buffer.WrittenSpan.ToArray();
    }
}
