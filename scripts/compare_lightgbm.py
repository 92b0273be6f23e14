"""LightGBM on BitShipper's exact training examples and split, beside BitShipper's own models.

Reads train.csv, calibration.csv and test.csv written by `bitshipper train --export-features`,
trains the same four models the same way (log loss; quantiles 0.1/0.5/0.9 of the hours beyond
the baseline rule, in days; early stopping on the latest 10% of training examples; isotonic
calibration and conformal widening on the calibration split) and prints accuracy and training
time next to BitShipper's report from the same run.
"""

import json
import sys
import time

import lightgbm as lgb
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score


def load(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, filling_values=np.nan)
    n = len(header) - 3
    return data[:, :n], data[:, n], data[:, n + 1], data[:, n + 2]


def ece(p, y):
    bins = np.minimum((p * 10).astype(int), 9)
    total = 0.0
    for b in range(10):
        m = bins == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return total


def fit(objective, x, y, alpha=None):
    split = int(0.9 * len(y))
    params = dict(objective=objective, learning_rate=0.35, num_leaves=31, max_depth=8,
                  min_data_in_leaf=40, lambda_l2=1.0, bagging_fraction=0.8, bagging_freq=1,
                  max_bin=255, seed=42, deterministic=True, num_threads=2, verbose=-1)
    if alpha is not None:
        params["alpha"] = alpha
    train = lgb.Dataset(x[:split], y[:split])
    valid = lgb.Dataset(x[split:], y[split:], reference=train)
    return lgb.train(params, train, num_boost_round=400, valid_sets=[valid],
                     callbacks=[lgb.early_stopping(30, verbose=False)])


def main(directory, report_path):
    x, late, eta, base = load(f"{directory}/train.csv")
    xc, late_c, eta_c, base_c = load(f"{directory}/calibration.csv")
    xt, late_t, eta_t, base_t = load(f"{directory}/test.csv")
    seconds = {}
    started = time.perf_counter()
    late_model = fit("binary", x, late)
    seconds["late_risk"] = time.perf_counter() - started
    target = (eta - base) / 24.0
    models = {}
    for name, q in [("eta_p10", 0.1), ("eta_p50", 0.5), ("eta_p90", 0.9)]:
        started = time.perf_counter()
        models[name] = fit("quantile", x, target, alpha=q)
        seconds[name] = time.perf_counter() - started

    iso = IsotonicRegression(out_of_bounds="clip").fit(late_model.predict(xc), late_c)
    lo_c = base_c + 24 * models["eta_p10"].predict(xc)
    hi_c = base_c + 24 * models["eta_p90"].predict(xc)
    widening = max(0.0, float(np.quantile(np.maximum(lo_c - eta_c, eta_c - hi_c), 0.8)))

    risk = iso.predict(late_model.predict(xt))
    p10, p50, p90 = (base_t + 24 * models[k].predict(xt) for k in ("eta_p10", "eta_p50", "eta_p90"))
    lo = np.maximum(np.minimum(p10, p50) - widening, 0)
    hi = np.maximum(p90, p50) + widening
    mid = np.clip(p50, lo, hi)
    lightgbm = dict(auc=roc_auc_score(late_t, risk), ece=ece(risk, late_t),
                    mae=float(np.mean(np.abs(mid - eta_t))),
                    coverage=float(np.mean((eta_t >= lo) & (eta_t <= hi))),
                    seconds=sum(seconds.values()),
                    trees=sum(m.num_trees() for m in [late_model, *models.values()]))

    with open(report_path) as f:
        report = json.load(f)
    ours = report["model"]
    stage = report["stage_seconds"]
    bitshipper = dict(auc=ours["auc"], ece=ours["calibration_error"], mae=ours["eta_mae_hours"],
                      coverage=ours["p10_p90_coverage"],
                      seconds=sum(stage[k] for k in ("late_risk", "eta_p10", "eta_p50", "eta_p90")),
                      trees=sum(t[0] for t in report["trees"].values()))
    print(f"examples: train {len(late)}, calibration {len(late_c)}, test {len(late_t)}")
    print(f"{'':<12}{'AUC':>8}{'ECE':>8}{'p50 MAE h':>11}{'p10-p90':>9}{'train s':>9}{'trees':>7}")
    for name, r in [("BitShipper", bitshipper), ("LightGBM", lightgbm)]:
        print(f"{name:<12}{r['auc']:>8.3f}{r['ece']:>8.3f}{r['mae']:>11.1f}"
              f"{r['coverage'] * 100:>8.1f}%{r['seconds']:>9.1f}{r['trees']:>7}")
    print(f"training time ratio BitShipper / LightGBM: {bitshipper['seconds'] / lightgbm['seconds']:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
