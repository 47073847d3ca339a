using System.Text;

namespace EioSharp.Kv;

/// <summary>Redis's error replies, word for word (clients match on them).</summary>
public static class KvErrors
{
    /// <summary>The reply while the AOF is replayed (Redis's shared.loadingerr).</summary>
    public const string Loading = "LOADING Redis is loading the dataset in memory";

#pragma warning disable CS1591 // each constant is the error text it names
    public const string Syntax = "ERR syntax error";
    public const string NotInteger = "ERR value is not an integer or out of range";
    public const string NotFloat = "ERR value is not a valid float";
    public const string Overflow = "ERR increment or decrement would overflow";
    public const string DecrementOverflow = "ERR decrement would overflow";
    public const string NaNOrInfinity = "ERR increment would produce NaN or Infinity";
    public const string NoSuchKey = "ERR no such key";
    public const string StringTooLong = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    public const string OffsetOutOfRange = "ERR offset is out of range";
    public const string InvalidCursor = "ERR invalid cursor";
    public const string NoAuth = "NOAUTH Authentication required.";
    public const string WrongPass = "WRONGPASS invalid username-password pair or user is disabled.";
    public const string DbIndexOutOfRange = "ERR DB index is out of range";
    public const string ExpireNxAndOthers = "ERR NX and XX, GT or LT options at the same time are not compatible";
    public const string ExpireGtAndLt = "ERR GT and LT options at the same time are not compatible";
    public const string WrongType = "WRONGTYPE Operation against a key holding the wrong kind of value";
    public const string SameObject = "ERR source and destination objects are the same";
    public const string HashValueNotInteger = "ERR hash value is not an integer";
    public const string HashValueNotFloat = "ERR hash value is not a float";
    public const string IndexOutOfRange = "ERR index out of range";
    public const string NotPositive = "ERR value is out of range, must be positive";
    public const string CountNotPositive = "ERR count should be greater than 0";
    public const string MinOrMaxNotFloat = "ERR min or max is not a float";
    public const string MinOrMaxNotValidString = "ERR min or max not valid string range item";
#pragma warning restore CS1591
#pragma warning disable CS1591
#pragma warning restore CS1591

    /// <summary><c>ERR wrong number of arguments for 'get' command</c>.</summary>
    public static string WrongArity(string commandName) => $"ERR wrong number of arguments for '{commandName}' command";

    /// <summary><c>ERR invalid expire time in 'set' command</c>.</summary>
    public static string InvalidExpireTime(string commandName) => $"ERR invalid expire time in '{commandName}' command";

    /// <summary><c>ERR unknown command 'foo', with args beginning with: 'a' 'b' </c>, built like Redis does
    /// (name cut at 128 bytes, arguments added while the list is shorter than 128 characters).</summary>
    public static string UnknownCommand(KvCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var args = new StringBuilder();
        for (int i = 1; i < command.Count && args.Length < 128; i++)
        {
            string arg = command.GetString(i);
            int room = 128 - args.Length;
            if (arg.Length > room) arg = arg[..room];
            args.Append('\'').Append(arg).Append("' ");
        }
        string name = command.GetString(0);
        if (name.Length > 128) name = name[..128];
        return $"ERR unknown command '{name}', with args beginning with: {args}";
    }

    /// <summary><c>ERR unknown subcommand 'foo'. Try CLIENT HELP.</c></summary>
    public static string UnknownSubcommand(string subcommand, string command)
    {
        if (subcommand.Length > 128) subcommand = subcommand[..128];
        return $"ERR unknown subcommand '{subcommand}'. Try {command.ToUpperInvariant()} HELP.";
    }

    /// <summary><c>ERR Unsupported option xx</c>.</summary>
    public static string UnsupportedOption(string option) => $"ERR Unsupported option {option}";
}
