"""
Your own pretrained network
===========================

A network you trained yourself is a backbone like any registered one: pass it
as a list of ``(name, module)`` stages, leaving its old classifier out, and say
how its pretraining normalised the images (``image_mean``, ``image_std``: the
values you gave torchvision's ``Normalize`` after ``ToTensor``).

Source task: scikit-learn's 8x8 digits 0-4, on which a small CNN is pretrained
here in a few seconds. Target task: digits 5-9 with 10 labels per class, every
other image held out. Runs offline in well under a minute on 2 CPU cores:
``./dev python examples/own_network.py``.
"""

# %%
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from torch import nn

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

digits = load_digits()
X, y = digits.images.astype(np.float32) / 16.0, digits.target  # pixels in [0, 1]
source = y < 5
X_target, y_target = X[~source], y[~source]
X_train, X_test, y_train, y_test = train_test_split(
    X_target, y_target, train_size=10 * 5, stratify=y_target, random_state=0
)
print(f"target: {len(X_train)} labelled images, {len(X_test)} held out")


# %%
# A CNN, pretrained the usual way
# -------------------------------
# Each block is one child module, so the blocks can be handed over as stages.
# Pixels go in as they are, in [0, 1] (``ToTensor()`` with no ``Normalize``).
def block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.block1, self.block2, self.block3 = (
            block(1, 16),
            block(16, 32),
            block(32, 64),
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.fc(self.pool(self.block3(self.block2(self.block1(x)))))


torch.manual_seed(0)
model = SmallCNN(5)
images = torch.from_numpy(X[source]).unsqueeze(1)
labels = torch.from_numpy(y[source])
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(15):
    for batch in torch.randperm(len(images)).split(64):
        optimizer.zero_grad()
        F.cross_entropy(model(images[batch]), labels[batch]).backward()
        optimizer.step()
model.eval()
with torch.no_grad():
    accuracy = (model(images).argmax(1) == labels).float().mean().item()
print(f"pretrained on digits 0-4: training accuracy {accuracy:.3f}")

# %%
# Hand it over
# ------------
# The stages are the children without ``fc``; sktransfer copies them and never
# changes ``model``. ``image_mean=0, image_std=1`` says the pixels went in as
# they are. Left out, 1-channel images would be fed as ``(x - 0.5) / 0.5`` and
# ``bn_stats="auto"`` would re-estimate the BatchNorm statistics on the
# training images to make up for it.
stages = [(name, child) for name, child in model.named_children() if name != "fc"]
normalisation = {"image_mean": 0.0, "image_std": 1.0}

finetuned = FineTuneClassifier(stages, **normalisation, random_state=0)
finetuned.fit(X_train, y_train)
print(f"fine-tuned: {finetuned.score(X_test, y_test):.3f}")

embeddings = make_pipeline(
    PretrainedFeatureExtractor(stages, **normalisation),
    LogisticRegression(max_iter=2000),
)
embeddings.fit(X_train, y_train)
print(f"frozen embeddings + LogisticRegression: {embeddings.score(X_test, y_test):.3f}")

# %%
# The same network from scratch
# -----------------------------
# A fresh ``SmallCNN`` given the same way: what the pretraining is worth here.
torch.manual_seed(1)
fresh = [(n, c) for n, c in SmallCNN(5).named_children() if n != "fc"]
scratch = FineTuneClassifier(fresh, **normalisation, random_state=0)
print(f"from scratch: {scratch.fit(X_train, y_train).score(X_test, y_test):.3f}")


# %%
# A whole module whose forward is not its children
# ------------------------------------------------
# Passing a module whole makes its top-level children the stages, run one after
# the other. The PyTorch tutorial's style applies ``F.relu``, ``F.max_pool2d``
# and ``torch.flatten`` inside ``forward`` instead: its children in order are
# not the network. One dry run finds that, and ``fit`` says what to do before
# any training.
class TutorialNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


try:
    FineTuneClassifier(TutorialNet()).fit(X_train, y_train)
except ValueError as error:
    print(error)
