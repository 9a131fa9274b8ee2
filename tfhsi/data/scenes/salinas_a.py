"""Salinas-A: an 86×83 sub-scene of Salinas; its labels keep Salinas' ids 1 and 10–14."""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile
from tfhsi.data.scenes.salinas import SALINAS_CLASSES

_IDS = (1, 10, 11, 12, 13, 14)

SALINAS_A = SCENES.add(
    "salinas_a",
    Scene(
        name="salinas_a",
        title="Salinas-A",
        sensor="AVIRIS, 1998",
        folder="salinas_a",
        cube=SceneFile(
            filename="SalinasA_corrected.mat",
            url=EHU_URL + "d/df/SalinasA_corrected.mat",
            key="salinasA_corrected",
            sha256="d75684ed3ab71a1024cee0f9db9061f50a3523a92ff5edfbbb1eed976b9f1721",
        ),
        labels=SceneFile(
            filename="SalinasA_gt.mat", url=EHU_URL + "a/aa/SalinasA_gt.mat", key="salinasA_gt"
        ),
        shape=(83, 86, 204),
        class_names=tuple(SALINAS_CLASSES[i - 1] for i in _IDS),
        class_ids=_IDS,
        rgb_bands=(43, 21, 11),
        labelled_pixels=5348,
    ),
)
