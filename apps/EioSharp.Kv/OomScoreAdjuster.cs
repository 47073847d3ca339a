using System.Globalization;
using EioSharp.Fs;

namespace EioSharp.Kv;

/// <summary>Redis's setOOMScoreAdj (h50): with <c>oom-score-adj</c> yes/relative, <c>/proc/self/oom_score_adj</c> is the
/// value the process had before the server first changed it plus the master's entry of <c>oom-score-adj-values</c>; with
/// absolute, that entry; back to <c>no</c>, the value it had before; clamped to -1000..1000. Written through the
/// server's file capability when the configuration changes (the store owner's cron: within 1/hz of CONFIG SET).</summary>
/// <remarks>Not thread-safe: called from the store owner's cron fiber only.</remarks>
internal sealed class OomScoreAdjuster(Action<string> log)
{
    private const string ProcFile = "/proc/self/oom_score_adj";
    private string? _applied = "no"; // the (mode, values) last applied; "no" at start: nothing to undo
    private int? _base; // the value before the server changed it (Redis's oom_score_adj_base)

    /// <summary>Applies the configuration's oom-score-adj if it changed since the last call.</summary>
    public async Task ApplyAsync(EioPath fs, KvServerConfig config)
    {
        string mode = config.AcceptedDirectives.GetValueOrDefault("oom-score-adj") ?? "no";
        string values = config.AcceptedDirectives.GetValueOrDefault("oom-score-adj-values") ?? "0 200 800";
        string key = mode == "no" ? "no" : mode + " " + values;
        if (key == _applied) return;
        _applied = key;
        EioPath file = fs / ProcFile;
        try
        {
            int value;
            if (mode == "no")
            {
                if (_base is not { } restore) return;
                value = restore;
                _base = null;
            }
            else
            {
                _base ??= int.Parse((await file.LoadStringAsync(64)).Trim(), CultureInfo.InvariantCulture);
                int master = int.Parse(values.Split(' ')[0], CultureInfo.InvariantCulture);
                value = Math.Clamp(mode == "absolute" ? master : master + _base.Value, -1000, 1000);
            }
            await file.SaveAsync(value.ToString(CultureInfo.InvariantCulture), FileCreate.Never);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            log($"WARNING: Unable to write oom_score_adj: {e.Message}");
        }
    }
}
