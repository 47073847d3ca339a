namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The Geo commands.</summary>
    internal static readonly KvCommandInfo[] GeoCommands =
    [
    ];
}
