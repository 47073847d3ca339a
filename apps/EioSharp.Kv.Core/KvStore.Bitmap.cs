namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The Bitmap commands.</summary>
    internal static readonly KvCommandInfo[] BitmapCommands =
    [
    ];
}
