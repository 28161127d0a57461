"""What `ffnbench train` prints for one run or several seeds."""


def _scores(r):
    if r["task"] == "regression":
        return (f"  test MSE {r['test_mse']:.4f}  RMSE {r['test_rmse']:.4f}  MAE {r['test_mae']:.4f}"
                f"  acc@0.5 {r['test_acc_0_5']:.1%}  acc@1.0 {r['test_acc_1_0']:.1%}\n"
                f"  train MSE {r['train_mse']:.4f}  val MSE {r['val_mse']:.4f}")
    return (f"  test accuracy {r['test_accuracy']:.2%}  log-loss {r['test_log_loss']:.4f}"
            f"  (classes {', '.join(map(str, r['classes']))})\n"
            f"  confusion (rows true, columns predicted): {r['test_confusion']}")


def summary(r):
    c = r["config"]
    head = (f"{r['backend']} on {r['dataset']}: hidden {c['hidden']}, {c['activation']}, "
            f"{c['loss']} loss, {c['optimizer']} batch {c['batch_size']}, lr {c['lr']}, "
            f"l2 {c['l2']}, seed {c['seed']}"
            + (f", {c['dtype']}" if c.get("dtype", "float64") != "float64" else "")
            + f" (device {r['device']})")
    if r["diverged"]:
        body = f"  DIVERGED (NaN/inf) in epoch {r['diverged_epoch']}"
    else:
        body = f"  {r['epochs_run']} epochs, best at epoch {r['best_epoch']}\n" + _scores(r)
    timing = (f"  {1e3 * r['seconds_per_epoch']:.2f} ms/epoch (median), "
              f"warm-up {r['warmup_seconds']:.2f} s")
    return "\n".join((head, body, timing))


def seeds_text(results, stats):
    """One line per run, then the statistics over the seeds (harness.seed_summary)."""
    lines = [summary(r) for r in results]
    lines.append(f"over {len(results)} seeds {stats['seeds']} ({stats['diverged']} diverged):")
    for key, m in stats["metrics"].items():
        lines.append(f"  {key:>14}: " + ("n/a (all diverged)" if m is None else
                     f"{m['mean']:.4f} ± {m['sd']:.4f} (min {m['min']:.4f}, max {m['max']:.4f})"))
    return "\n".join(lines)
