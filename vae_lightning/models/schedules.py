"""Learning-rate schedules from papers, as epoch -> factor functions for ``LambdaLR``."""


def burda2016_factor(epoch: int) -> float:
    """Burda et al. (2016): 3^i epochs at learning rate 1e-3 * 10^(-i/7), for i = 0..7 (3,280 epochs).

    Stage i covers epochs [sum_{j<i} 3^j, sum_{j<=i} 3^j); after the last stage the rate stays at i = 7.
    """
    stage, end = 0, 1
    while epoch >= end and stage < 7:
        stage += 1
        end += 3**stage
    return 10 ** (-stage / 7)
