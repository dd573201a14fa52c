//! Dependency order of steps: a stable topological sort that keeps file order
//! among independent steps and names a cycle when there is one.

/// Orders `count` nodes so that every node comes after its `deps`.
/// Returns the order, or the nodes of one cycle.
pub fn topological(count: usize, deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut order = Vec::with_capacity(count);
    let mut placed = vec![false; count];
    while order.len() < count {
        // The first node in file order whose inputs are all placed.
        let next = (0..count).find(|&n| !placed[n] && deps[n].iter().all(|&d| placed[d]));
        match next {
            Some(n) => {
                placed[n] = true;
                order.push(n);
            }
            None => return Err(find_cycle(deps, &placed)),
        }
    }
    Ok(order)
}

fn find_cycle(deps: &[Vec<usize>], placed: &[bool]) -> Vec<usize> {
    // Every unplaced node has an unplaced dependency: walk them until a repeat.
    let mut path = Vec::new();
    let mut node = (0..deps.len()).find(|&n| !placed[n]).unwrap_or(0);
    loop {
        if let Some(start) = path.iter().position(|&n| n == node) {
            return path[start..].to_vec();
        }
        path.push(node);
        match deps[node].iter().find(|&&d| !placed[d]) {
            Some(&d) => node = d,
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_dependencies_first_and_keeps_file_order() {
        // 0 depends on 2, 1 has none, 2 depends on 1.
        assert_eq!(topological(3, &[vec![2], vec![], vec![1]]), Ok(vec![1, 2, 0]));
        assert_eq!(topological(2, &[vec![], vec![]]), Ok(vec![0, 1]));
    }

    #[test]
    fn names_a_cycle() {
        let cycle = topological(3, &[vec![], vec![2], vec![1]]).unwrap_err();
        assert_eq!(cycle, vec![1, 2]);
    }
}
